# The compose stack's keygen service for podman (`make compose-demo`): the
# tokengate image plus a static busybox for keygen's shell script. The build
# context is bin/keygen-image, which the Makefile fills.
FROM localhost/tokengate:local
COPY . /
USER 0
ENTRYPOINT ["/bin/sh"]
