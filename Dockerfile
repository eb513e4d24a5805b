# One image, two processes: `worker` and `starter serve` (see docker-compose.yml).
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
# The commit the image is built from, for --version, the first log line and
# clerksync_build_info (the build context has no .git):
#   docker compose build --build-arg COMMIT=$(git rev-parse HEAD)
ARG COMMIT=unknown
# -tags release leaves out what only make run uses (starter token).
RUN CGO_ENABLED=0 go build -trimpath -tags release -ldflags "-X github.com/clerksync/clerksync/internal/buildinfo.Commit=${COMMIT}" -o /out/worker ./worker \
 && CGO_ENABLED=0 go build -trimpath -tags release -ldflags "-X github.com/clerksync/clerksync/internal/buildinfo.Commit=${COMMIT}" -o /out/starter ./starter

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/worker /out/starter /usr/local/bin/
USER nonroot
ENTRYPOINT ["/usr/local/bin/worker"]
