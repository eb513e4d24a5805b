# One image, two processes: `worker` and `starter serve` (see docker-compose.yml).
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
# -tags release leaves out what only make run uses (starter token).
RUN CGO_ENABLED=0 go build -trimpath -tags release -o /out/worker ./worker \
 && CGO_ENABLED=0 go build -trimpath -tags release -o /out/starter ./starter

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/worker /out/starter /usr/local/bin/
USER nonroot
ENTRYPOINT ["/usr/local/bin/worker"]
