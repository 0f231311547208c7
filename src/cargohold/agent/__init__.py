"""The ECS agent (`cargohold ecs agent`): registers as a container instance, pulls the images
of the tasks placed on it with their execution role's token, and runs them through a runtime
(the Docker Engine API, podman's, or `chroot` for hosts with no engine)."""
