"""One sync: survey the sources, run the batch jobs, publish."""
