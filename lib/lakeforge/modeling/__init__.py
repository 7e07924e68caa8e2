"""The model: the estimator by dotted path (`estimator`), the portable pyfunc that registered
models are (`portable`) and how it is logged (`logging`)."""
