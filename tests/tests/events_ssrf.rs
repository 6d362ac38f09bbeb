//! The SSRF guard of webhooks and flow requests: hostile targets in every spelling are refused
//! before a connection (IP literals) or at resolution (names), the connection goes only to the
//! addresses that were checked (a rebinding resolver gains nothing), redirects are not
//! followed, and only what the operator allow-lists gets through.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use workeros_events::guard::{Allow, Guard, GuardError, Lookup, refused};
use workeros_tests::sink::Sink;

/// A resolver answering from a table; `flip.test` answers a public address first and loopback
/// after (a rebinding DNS server).
struct FakeDns {
    table: HashMap<&'static str, Vec<IpAddr>>,
    flips: AtomicUsize,
}

#[async_trait::async_trait]
impl Lookup for FakeDns {
    async fn lookup(&self, host: &str) -> std::io::Result<Vec<IpAddr>> {
        if host == "flip.test" {
            let n = self.flips.fetch_add(1, Ordering::SeqCst);
            let ip = if n == 0 { "93.184.216.34" } else { "127.0.0.1" };
            return Ok(vec![ip.parse().unwrap()]);
        }
        self.table
            .get(host)
            .cloned()
            .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::NotFound, "no such host"))
    }
}

fn dns() -> Arc<FakeDns> {
    let ips = |l: &[&str]| {
        l.iter()
            .map(|s| s.parse().unwrap())
            .collect::<Vec<IpAddr>>()
    };
    Arc::new(FakeDns {
        table: HashMap::from([
            ("localhost", ips(&["127.0.0.1", "::1"])),
            ("evil.test", ips(&["10.0.0.5"])),
            ("metadata.test", ips(&["169.254.169.254"])),
            ("metadata.google.internal", ips(&["169.254.169.254"])),
            ("v6loop.test", ips(&["::1"])),
            ("mapped.test", ips(&["::ffff:10.0.0.1"])),
            ("ula.test", ips(&["fd00:ec2::254"])),
            ("mixed.test", ips(&["93.184.216.34", "192.168.1.1"])),
            ("cgnat.test", ips(&["100.64.1.1"])),
            ("zero.test", ips(&["0.0.0.0"])),
            ("nat64.test", ips(&["64:ff9b::a9fe:a9fe"])),
            ("public.test", ips(&["93.184.216.34"])),
            ("sink.test", ips(&["127.0.0.1"])),
        ]),
        flips: AtomicUsize::new(0),
    })
}

/// Targets that must never be reached (the port is the sink's, so a slip would show there):
/// hosts the guard must refuse as such, and URLs it must refuse before looking at a host.
fn hostile(port: u16) -> (Vec<String>, Vec<String>) {
    let hosts = [
        // Loopback in every spelling the URL standard accepts.
        "127.0.0.1",
        "127.1",
        "127.0.1",
        "2130706433",
        "0x7f000001",
        "0x7f.0.0.1",
        "0177.0.0.1",
        "0177.0.0.01",
        "017700000001",
        "127.000.000.001",
        "127.255.255.254",
        "127.0.0.1.",
        "[::1]",
        "[0:0:0:0:0:0:0:1]",
        "[::ffff:127.0.0.1]",
        "[::ffff:7f00:1]",
        "[::127.0.0.1]",
        "[64:ff9b::127.0.0.1]",
        "[2002:7f00:1::]",
        // Unspecified.
        "0.0.0.0",
        "0",
        "[::]",
        // Private, shared, link-local and metadata.
        "10.0.0.1",
        "10.255.255.255",
        "012.0.0.1",
        "0x0a.0.0.1",
        "167772161",
        "172.16.0.1",
        "172.31.255.255",
        "192.168.0.1",
        "3232235777",
        "100.64.0.1",
        "100.100.100.200",
        "169.254.169.254",
        "0xa9fea9fe",
        "2852039166",
        "0251.0376.0251.0376",
        "169.254.0.1",
        "[::ffff:169.254.169.254]",
        "[::ffff:a9fe:a9fe]",
        "[fd00:ec2::254]",
        "[fc00::1]",
        "[fe80::1]",
        "[fec0::1]",
        // Multicast, broadcast, reserved, documentation, benchmarking, Teredo.
        "224.0.0.1",
        "239.255.255.250",
        "255.255.255.255",
        "240.0.0.1",
        "[ff02::1]",
        "192.0.2.1",
        "198.51.100.7",
        "203.0.113.9",
        "198.18.0.1",
        "192.0.0.170",
        "[2001:db8::1]",
        "[2001::1]",
        // Names resolving to refused addresses.
        "localhost",
        "evil.test",
        "metadata.test",
        "metadata.google.internal",
        "v6loop.test",
        "mapped.test",
        "ula.test",
        "mixed.test",
        "cgnat.test",
        "zero.test",
        "nat64.test",
    ];
    let refused_hosts: Vec<String> = hosts
        .iter()
        .map(|h| format!("http://{h}:{port}/hook"))
        .collect();
    let other = vec![
        format!("https://127.0.0.1:{port}/"),
        format!("http://user:pw@public.test:{port}/"),
        "file:///etc/passwd".to_owned(),
        format!("gopher://127.0.0.1:{port}/_"),
        "ftp://public.test/x".to_owned(),
        "javascript:alert(1)".to_owned(),
        format!("http://no-such-host.test:{port}/"),
    ];
    (refused_hosts, other)
}

#[tokio::test]
async fn hostile_targets_are_refused_and_never_reached() {
    let sink = Sink::start().await;
    let port = sink.addr.port();
    let guard = Guard::with_lookup(Allow::none(), Duration::from_secs(2), dns());
    let (hosts, other) = hostile(port);
    assert!(
        hosts.len() + other.len() >= 50,
        "{}",
        hosts.len() + other.len()
    );
    for url in hosts.iter().chain(&other) {
        let err = guard.check(url).await.expect_err(url);
        // A hostile host is refused for what it is (not, say, for failing to resolve).
        let refused = matches!(err, GuardError::Refused { .. });
        let early = matches!(err, GuardError::BadUrl(_) | GuardError::Unresolved(_));
        assert!(
            if hosts.contains(url) {
                refused
            } else {
                early || refused
            },
            "{url}: {err}"
        );
        // The request path refuses too: literals before connecting, names at resolution.
        if let Ok(req) = guard.request(reqwest::Method::POST, url) {
            let sent = req.body("{}").send().await;
            assert!(sent.is_err(), "{url}: sent");
        }
    }
    // The rebinding resolver: checked public, then asked again at connect time it says
    // loopback; the connection takes only what the connect-time check passed.
    let flip = format!("http://flip.test:{port}/hook");
    assert!(
        guard.check(&flip).await.is_ok(),
        "the first answer is public"
    );
    let sent = guard
        .request(reqwest::Method::POST, &flip)
        .unwrap()
        .body("{}")
        .send()
        .await;
    let chain = format!("{:?}", sent.expect_err("rebinding"));
    assert!(chain.contains("Refused"), "{chain}");
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(
        sink.received().is_empty(),
        "a hostile target was reached: {:?}",
        sink.received()
    );
    eprintln!(
        "{} hostile targets refused, none reached",
        hosts.len() + other.len() + 1
    );
}

#[tokio::test]
async fn the_allow_list_exempts_by_name_or_range_and_redirects_stay_unfollowed() {
    let sink = Sink::start().await;
    let port = sink.addr.port();
    sink.respond(|r, _| match r.path.as_str() {
        "/redirect" => (302, Some(format!("http://127.0.0.1:{}/target", 0))),
        _ => (200, None),
    });
    let by_name = Guard::with_lookup(
        Allow::parse("sink.test").unwrap(),
        Duration::from_secs(2),
        dns(),
    );
    let res = by_name
        .request(
            reqwest::Method::POST,
            &format!("http://sink.test:{port}/in"),
        )
        .unwrap()
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    // The name is allowed, not the address: loopback by literal stays refused.
    assert!(
        by_name
            .check(&format!("http://127.0.0.1:{port}/"))
            .await
            .is_err()
    );
    let res = by_name
        .request(
            reqwest::Method::POST,
            &format!("http://sink.test:{port}/redirect"),
        )
        .unwrap()
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 302, "the redirect comes back as the answer");
    let by_range = Guard::with_lookup(
        Allow::parse("127.0.0.1/32, fd00::/8").unwrap(),
        Duration::from_secs(2),
        dns(),
    );
    for url in [
        format!("http://127.0.0.1:{port}/a"),
        format!("http://localhost:{port}/b"),
    ] {
        // `localhost` also resolves to `::1`, outside the range: refused as a whole.
        let r = by_range.check(&url).await;
        assert_eq!(r.is_ok(), url.contains("127.0.0.1"), "{url}: {r:?}");
    }
    assert!(by_range.check("http://[fd00:ec2::254]/").await.is_ok());
    assert!(by_range.check("http://10.0.0.1/").await.is_err());
    let paths: Vec<String> = sink.received().iter().map(|r| r.path.clone()).collect();
    assert_eq!(paths, vec!["/in", "/redirect"]);

    // An entry with a port exempts that port only, by name (its own client) or by address.
    let one_port = Guard::with_lookup(
        Allow::parse(&format!(
            "sink.test:{port}, 127.0.0.1:{port}, [::1]:{port}, fd00::/8"
        ))
        .unwrap(),
        Duration::from_secs(2),
        dns(),
    );
    let res = one_port
        .request(
            reqwest::Method::POST,
            &format!("http://sink.test:{port}/port"),
        )
        .unwrap()
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let other = if port == 9 { 10 } else { port - 1 };
    for (url, ok) in [
        (format!("http://sink.test:{port}/"), true),
        (format!("http://127.0.0.1:{port}/"), true),
        (format!("http://[::1]:{port}/"), true),
        ("http://[fd00:ec2::254]/".to_owned(), true),
        (format!("http://sink.test:{other}/"), false),
        ("http://sink.test/".to_owned(), false),
        (format!("http://127.0.0.1:{other}/"), false),
        (format!("http://[::1]:{other}/"), false),
    ] {
        let r = one_port.check(&url).await;
        assert_eq!(r.is_ok(), ok, "{url}: {r:?}");
    }
    let e = one_port
        .request(
            reqwest::Method::POST,
            &format!("http://sink.test:{other}/never"),
        )
        .unwrap()
        .send()
        .await
        .unwrap_err();
    assert!(format!("{e:?}").contains("Refused"), "{e:?}");
    let paths: Vec<String> = sink.received().iter().map(|r| r.path.clone()).collect();
    assert_eq!(paths, vec!["/in", "/redirect", "/port"]);

    for bad in [
        "10.0.0.0/33",
        "not a host!",
        "::1/129",
        "host.test:0",
        "host.test:70000",
        "[::1",
        "[::1]9000",
        "10.0.0.1:x",
    ] {
        assert!(Allow::parse(bad).is_err(), "{bad}");
    }
    // The classification itself, on a few edges.
    for (ip, refused_) in [
        ("8.8.8.8", false),
        ("2606:4700::1111", false),
        ("100.63.255.255", false),
        ("100.128.0.0", false),
        ("172.32.0.1", false),
        ("::ffff:8.8.8.8", false),
        ("172.15.255.255", false),
        ("169.254.169.254", true),
        ("::ffff:192.168.0.1", true),
    ] {
        let ip: IpAddr = ip.parse().unwrap();
        assert_eq!(refused(ip).is_some(), refused_, "{ip}");
    }
}
