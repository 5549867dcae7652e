"""The docker-less local stack and its loopback fixtures (demo site, proxy servers). Not deployed."""
