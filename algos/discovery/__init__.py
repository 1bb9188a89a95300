"""Category discovery: generalized (GCD), novel-class (NCD) and continual."""
