"""Files in and out: the one image reader (``images``), mesh and coefficient writers (``mesh``),
report pictures (``report``)."""
