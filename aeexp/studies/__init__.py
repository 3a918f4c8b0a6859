"""The studies' reports, each assembled from run directories: the thesis reproduction, beta."""
