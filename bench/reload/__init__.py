"""bench/reload: member changes under load, failed requests counted (see __main__)."""
