# Build: docker build -t tsdb .
# Run:   docker run -p 9090:9090 -v tsdb-data:/data tsdb
# (inside the container it listens on all interfaces; configure auth: in
# the config file before exposing it, see docs/security.md)
FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -tags pebblegozstd -trimpath -o /out/tsdb ./cmd/tsdb

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/tsdb /usr/local/bin/tsdb
COPY examples/tsdb.yml /etc/tsdb/tsdb.yml
COPY examples/rules.yml /etc/tsdb/rules/example.yml
VOLUME /data
EXPOSE 9090
ENTRYPOINT ["/usr/local/bin/tsdb", "serve", "--listen", "0.0.0.0:9090", "--data", "/data", "--config.file", "/etc/tsdb/tsdb.yml", "--rules", "/etc/tsdb/rules/*.yml"]
