"""HTTP plumbing shared by the services: app keys, the base application, middleware, forms,
client authentication, shutdown."""
