//! Webhook benches: Standard Webhooks signing of a 256-byte body (the target is 2,000,000 per
//! second per core) and verification of the same message.

#![allow(missing_docs, clippy::unwrap_used)]

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use std::hint::black_box;
use workeros_events::signing::{Secret, SignedHeaders, verify};

fn benches(c: &mut Criterion) {
    let secret = Secret::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
    let body = vec![b'x'; 256];
    let id = "msg_01JD5N7Q8ZK3V4W5X6Y7Z8A9B0";
    let ts = 1_732_000_000_i64;
    let mut g = c.benchmark_group("webhooks");
    g.throughput(Throughput::Elements(1));
    g.bench_function("sign_256_bytes", |b| {
        b.iter(|| black_box(&secret).sign(black_box(id), black_box(ts), black_box(&body)))
    });
    let signature = secret.sign(id, ts, &body);
    let headers = SignedHeaders {
        id,
        timestamp: "1732000000",
        signature: &signature,
    };
    let secrets = [secret.clone()];
    g.bench_function("verify_256_bytes", |b| {
        b.iter(|| {
            verify(
                black_box(&secrets),
                black_box(headers),
                black_box(&body),
                ts,
                300,
            )
            .unwrap()
        })
    });
    g.finish();
}

criterion_group!(group, benches);
criterion_main!(group);
