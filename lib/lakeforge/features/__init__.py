"""Feature views and the dataset on Delta: declared views (select / aggregate / python), their store,
point-in-time retrieval, the dataset (spine + label + derived) and the Transform pattern.

`views` computes each view's rows, `aggregates` the past-only aggregates, `store` materializes and
registers views, `retrieval` joins them onto the spine point in time, `dataset` builds the model-ready
rows and `step` is the features step. `transform` (the model's fitted preprocessing) has no Spark
dependency and is what a logged model imports.
"""
