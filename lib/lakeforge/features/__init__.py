"""Feature store on Delta: declared feature tables, point-in-time retrieval, the Transform pattern.

`store` declares, materializes and registers feature tables; `retrieval` joins them onto a spine
point-in-time correctly; `transform` builds the model's fitted preprocessing; `flights` defines
the flights feature tables and the features step (`run`).
"""
from lakeforge.features.flights import build_flight_features, labelled_flights, run

__all__ = ["build_flight_features", "labelled_flights", "run"]
