# The hub's image for those who build with Docker. `make image` builds the
# same image without Docker (tools/mkimage); deploy/image_test.go checks
# that both say the same user, entrypoint, ports and writable /tmp.
FROM golang:1.26.8 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
# Static (no cgo), reproducible: no paths, no VCS stamp, no build id.
RUN CGO_ENABLED=0 GOOS=linux go build -trimpath -buildvcs=false -ldflags="-s -w -buildid=" -o /out/imagehub ./cmd/imagehub

# distroless/static: CA certificates, /etc/passwd with nonroot (65532), no shell.
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/imagehub /usr/local/bin/imagehub
ENV DATA_DIR=/tmp/imagehub SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt
WORKDIR /tmp
VOLUME ["/tmp"]
USER 65532:65532
EXPOSE 8080/tcp 9090/tcp
ENTRYPOINT ["/usr/local/bin/imagehub"]
CMD ["serve"]
