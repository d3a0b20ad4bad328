"""flagedge's Pulumi program: a component that deploys the Worker, and its config."""
