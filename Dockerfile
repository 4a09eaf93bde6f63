# portico in a small image: build in the Rust image, ship the binary alone.
#
#   docker build -t portico .
#   docker run --rm -p 443:443 -p 80:80 \
#     -v ./portico.toml:/etc/portico/portico.toml:ro -v portico-acme:/var/lib/portico/acme portico
#
# Guides: docs/docker-caddy.md, docs/kinsta.md (COPY --from this image).

FROM rust:1-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY src ./src
COPY benches ./benches
RUN cargo build --release --locked --bin portico \
 && install -D -m 0755 target/release/portico /out/portico

FROM debian:bookworm-slim
COPY --from=build /out/portico /usr/local/bin/portico
# CA certificates for ACME directories, https upstreams and rediss://
# clusters; the capability to bind 80 and 443 as a plain user; a user and
# the ACME storage directory it owns (mount a volume there).
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates libcap2-bin \
 && setcap cap_net_bind_service=+ep /usr/local/bin/portico \
 && apt-get purge -y libcap2-bin && apt-get autoremove -y \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --home-dir /var/lib/portico --create-home portico \
 && install -d -o portico -g portico -m 0700 /var/lib/portico/acme
USER portico
WORKDIR /var/lib/portico
EXPOSE 80 443
ENV PORTICO_CONFIG=/etc/portico/portico.toml
CMD ["portico", "run"]
