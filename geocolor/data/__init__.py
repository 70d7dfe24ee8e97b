"""Datasets and pixel conversions (SAR scaling, LAB)."""
