"""The contract shared by training and the live app: schema, detector, crop, network, weights format."""
