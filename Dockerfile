# Builds the manager image: `make docker-build IMG=... VERSION=...`.

# The module's toolchain is go1.27.3 (go.mod); the image's Go is at least that.
FROM golang:1.27 AS builder
ARG VERSION=dev
WORKDIR /workspace

# Download the modules first so that this layer is cached across code changes.
COPY go.mod go.sum ./
RUN go mod download

COPY api/ api/
COPY controllers/ controllers/
COPY internal/ internal/
COPY main.go main.go

# The command of `make build` (dockerfile_test.go checks it).
RUN CGO_ENABLED=0 go build -trimpath \
    -ldflags "-s -w -X github.com/dezai/uredis-backup-operator/internal/version.Version=${VERSION}" \
    -o manager .

# A static, shell-less base image running as the unprivileged user 65532.
FROM gcr.io/distroless/static:nonroot
WORKDIR /
COPY --from=builder /workspace/manager /manager
USER 65532:65532
ENTRYPOINT ["/manager"]
