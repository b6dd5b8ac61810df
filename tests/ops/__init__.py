"""Tests of the ops package: reference vectors, gradients, bad input (and the native backend)."""
