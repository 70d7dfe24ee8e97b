"""Reading and writing files: rasters, model files, atomic writes."""
