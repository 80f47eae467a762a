"""Items: the example resource. Copy this folder as the shape of your next resource."""
