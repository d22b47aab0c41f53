//! `vdi bench-api`: the GraphQL API under load, each figure against the same operation made
//! straight on the Kubernetes API in the same run.
//!
//! 1. `sessions(first: 100)` for a user with 100 sessions among 10,000 (in 100 namespaces), as
//!    that user (the API validates the token and lists by impersonation); baseline: the same
//!    list of the user's namespace with the user's own token.
//! 2. 1,000 concurrent `sessionEvents(id)` subscriptions over graphql-ws on one API server, and
//!    a phase change of that session: the time until each subscriber hears it; baseline: 1,000
//!    Kubernetes watches of the session, the same change.
//!
//! Tokens come from the benchmark's own OpenID Provider ([`issuer`]), which the API and the
//! control plane trust as they trust a real one. The API is served over plain HTTP on loopback
//! here (its own TLS is not what is measured); the control plane, as always, over HTTPS.

mod clients;
mod issuer;

use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};
use tokio::sync::mpsc;
use vdi_cluster::{Part, SimulatedNodes};
use vdi_platform::{Platform, PlatformOptions};

use crate::bench::{millis, percentile};
use clients::Heard;
use issuer::Issuer;

/// Arguments of `vdi bench-api`.
#[derive(clap::Args)]
pub(crate) struct BenchArgs {
    /// Concurrent subscriptions (and, for the baseline, watches).
    #[arg(long, default_value_t = 1000)]
    subscribers: usize,
    /// Phase changes each set of listeners hears.
    #[arg(long, default_value_t = 5)]
    rounds: usize,
    /// Sessions in the store.
    #[arg(long, default_value_t = 10_000)]
    sessions: usize,
    /// Of which the benchmark's user owns.
    #[arg(long, default_value_t = 100)]
    user_sessions: usize,
    /// Timed `sessions` queries (and baseline lists).
    #[arg(long, default_value_t = 200)]
    queries: usize,
}

/// Wall-clock microseconds since the epoch.
fn wall_us() -> i64 {
    jiff::Timestamp::now().as_microsecond()
}

pub(crate) fn run(args: &BenchArgs) -> Result<ExitCode> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("start the async runtime")?;
    rt.block_on(bench(args))
}

/// A session object for `user` in `namespace`, in phase `Pending`.
fn session(namespace: &str, name: &str, user: &str) -> Value {
    json!({
        "apiVersion": "vdi.dev/v1alpha1", "kind": "VDISession",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"user": {"name": user, "groups": ["staff"]}, "template": "ubuntu-desktop", "timeout": "1h"},
        "status": {"phase": "Pending"},
    })
}

/// Fills the store: `user_sessions` in `user_ns`, the rest spread over 99 other namespaces.
fn fill(platform: &Platform, user_ns: &str, args: &BenchArgs) -> Result<()> {
    let store = platform.cluster.store();
    let find = |g: &str, v: &str, p: &str| {
        store
            .registry
            .find(g, v, p)
            .with_context(|| format!("{p} are not served"))
    };
    let (ns_t, vds_t) = (
        find("", "v1", "namespaces")?,
        find(vdi_crd::GROUP, vdi_crd::VERSION, "vdisessions")?,
    );
    let others: Vec<String> = (0..99).map(|i| format!("u-bench-{i:02}")).collect();
    for ns in &others {
        store.create(
            &ns_t,
            "",
            json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}),
        )?;
    }
    for i in 0..args.sessions {
        let (ns, user) = if i < args.user_sessions {
            (user_ns.to_owned(), "oidc:alice".to_owned())
        } else {
            let k = i % others.len();
            (others[k].clone(), format!("oidc:user-{k:02}"))
        };
        let obj = session(&ns, &format!("bench-{i}"), &user);
        let created = store.create(&vds_t, &ns, obj.clone())?;
        let mut with_status = created;
        with_status["status"] = obj["status"].clone();
        store.update(
            &vds_t,
            &ns,
            &format!("bench-{i}"),
            with_status,
            Part::Status,
        )?;
    }
    Ok(())
}

/// Sets the phase of the session `namespace/name` (as the operator would).
fn set_phase(platform: &Platform, namespace: &str, name: &str, phase: &str) -> Result<()> {
    let store = platform.cluster.store();
    let rt = store
        .registry
        .find(vdi_crd::GROUP, vdi_crd::VERSION, "vdisessions")
        .context("vdisessions are not served")?;
    let mut obj = store.get(&rt, namespace, name)?;
    obj["status"]["phase"] = json!(phase);
    store.update(&rt, namespace, name, obj, Part::Status)?;
    Ok(())
}

async fn timed<F, Fut>(n: usize, mut op: F) -> Result<Vec<Duration>>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<()>>,
{
    for _ in 0..(n / 10).max(1) {
        op().await?;
    }
    let mut times = Vec::with_capacity(n);
    for _ in 0..n {
        let start = Instant::now();
        op().await?;
        times.push(start.elapsed());
    }
    times.sort_unstable();
    Ok(times)
}

/// Waits for `n` listeners to be ready, then changes the phase `rounds` times and returns, for
/// every listener and round, the time from the change until it was heard.
async fn fan_out(
    platform: &Platform,
    (namespace, name): (&str, &str),
    n: usize,
    rounds: usize,
    rx: &mut mpsc::UnboundedReceiver<Heard>,
) -> Result<Vec<Duration>> {
    let mut ready = 0;
    while ready < n {
        match tokio::time::timeout(Duration::from_secs(120), rx.recv()).await {
            Ok(Some(Heard::Ready)) => ready += 1,
            Ok(Some(Heard::Phase { .. })) => {}
            Ok(None) => bail!("listeners failed before they were ready ({ready}/{n})"),
            Err(_) => bail!("only {ready}/{n} listeners were ready within two minutes"),
        }
    }
    // Let the last subscriptions' watches start and their first events pass.
    tokio::time::sleep(Duration::from_secs(2)).await;
    while rx.try_recv().is_ok() {}
    let mut latencies = Vec::with_capacity(n * rounds);
    for round in 0..rounds {
        let phase = if round % 2 == 0 {
            "Running"
        } else {
            "Provisioning"
        };
        let changed = wall_us();
        set_phase(platform, namespace, name, phase)?;
        let mut heard = 0;
        while heard < n {
            match tokio::time::timeout(Duration::from_secs(30), rx.recv()).await {
                Ok(Some(Heard::Phase { phase: p, at })) if p.eq_ignore_ascii_case(phase) => {
                    heard += 1;
                    latencies.push(Duration::from_micros(
                        u64::try_from(at - changed).unwrap_or(0),
                    ));
                }
                Ok(Some(_)) => {}
                Ok(None) => bail!("listeners ended in round {round}"),
                Err(_) => bail!("round {round}: {heard}/{n} listeners heard the change in 30 s"),
            }
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    latencies.sort_unstable();
    Ok(latencies)
}

fn row(label: &str, sorted: &[Duration]) {
    println!(
        "{label:<58} {:>10} {:>10}",
        millis(percentile(sorted, 0.5)),
        millis(percentile(sorted, 0.99))
    );
}

async fn bench(args: &BenchArgs) -> Result<ExitCode> {
    if args.user_sessions == 0 || args.user_sessions > args.sessions {
        bail!("--user-sessions must be between 1 and --sessions");
    }
    let issuer = Issuer::start().await?;
    let dir = tempfile::tempdir().context("a temporary directory")?;
    let mut platform = Platform::start(PlatformOptions {
        data_dir: dir.path().to_owned(),
        listen: "127.0.0.1:0".parse()?,
        nodes: SimulatedNodes {
            count: 0,
            ..SimulatedNodes::default()
        },
        process_node: None,
        plugins_dir: None,
        cache_dir: None,
        operator: None,
        admission_hook: false,
        oidc: vec![issuer.config()],
    })
    .await?;
    let user_ns = vdi_platform::add_user(&platform.client, "oidc:alice").await?;
    let started = Instant::now();
    fill(&platform, &user_ns, args)?;
    println!(
        "{} sessions ({} of alice's in {user_ns}) stored in {:.1} s",
        args.sessions,
        args.user_sessions,
        started.elapsed().as_secs_f64()
    );
    let api = platform
        .api_state(vdi_api::ApiConfig::new(issuer.config()))
        .await?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let api_addr = listener.local_addr()?;
    let server = tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, vdi_api::router(api)).await {
            tracing::error!(error = %e, "the API stopped");
        }
    });
    let token = issuer.token("alice", &["staff"])?;
    let http = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(
            platform.cluster.ca_pem().as_bytes(),
        )?)
        .tls_built_in_root_certs(false)
        .build()?;
    let cluster = platform.cluster.url();

    // 1. The user's sessions: through the API, and listed straight.
    let graphql = format!("http://{api_addr}{}", vdi_api::GRAPHQL_PATH);
    let query = json!({"query": format!(
        "{{ sessions(first: {}) {{ edges {{ node {{ id name phase }} }} }} }}",
        args.user_sessions
    )});
    let want = args.user_sessions;
    let api_times = timed(args.queries, || async {
        let answer: Value = http
            .post(&graphql)
            .bearer_auth(&token)
            .json(&query)
            .send()
            .await?
            .json()
            .await?;
        let got = answer["data"]["sessions"]["edges"]
            .as_array()
            .map_or(0, Vec::len);
        if got != want {
            bail!("the API listed {got} sessions, not {want}: {answer}");
        }
        Ok(())
    })
    .await?;
    let list_url = format!("{cluster}/apis/vdi.dev/v1alpha1/namespaces/{user_ns}/vdisessions");
    let kube_times = timed(args.queries, || async {
        let answer: Value = http
            .get(&list_url)
            .bearer_auth(&token)
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        let got = answer["items"].as_array().map_or(0, Vec::len);
        if got != want {
            bail!("the Kubernetes API listed {got} sessions, not {want}");
        }
        Ok(())
    })
    .await?;

    // 2. Fan-out of one change: subscriptions through the API, then watches straight.
    let watched = (user_ns.as_str(), "bench-0");
    let id = vdi_api::session_id(&user_ns, "bench-0");
    let ws_url = format!("ws://{api_addr}{}", vdi_api::WS_PATH);
    let (tx, mut rx) = mpsc::unbounded_channel();
    let subs: Vec<_> = (0..args.subscribers)
        .map(|_| {
            let (url, token, id, tx) = (ws_url.clone(), token.clone(), id.clone(), tx.clone());
            tokio::spawn(async move {
                if let Err(e) = clients::subscriber(url, token, id, tx).await {
                    tracing::warn!(error = %e, "a subscriber failed");
                }
            })
        })
        .collect();
    drop(tx);
    let via_api = fan_out(&platform, watched, args.subscribers, args.rounds, &mut rx).await;
    for s in subs {
        s.abort();
    }
    let via_api = via_api?;
    let (tx, mut rx) = mpsc::unbounded_channel();
    let watches: Vec<_> = (0..args.subscribers)
        .map(|_| {
            let (http, base, token, tx) =
                (http.clone(), cluster.clone(), token.clone(), tx.clone());
            let (ns, name) = (user_ns.clone(), "bench-0".to_owned());
            tokio::spawn(async move {
                if let Err(e) = clients::watcher(http, base, token, ns, name, tx).await {
                    tracing::warn!(error = %e, "a watch failed");
                }
            })
        })
        .collect();
    drop(tx);
    let straight = fan_out(&platform, watched, args.subscribers, args.rounds, &mut rx).await;
    for w in watches {
        w.abort();
    }
    let straight = straight?;
    server.abort();
    platform.stop().await;

    println!();
    println!("{:<58} {:>10} {:>10}", "operation", "p50", "p99");
    row(
        &format!("API: sessions(first: {want}) as the user"),
        &api_times,
    );
    row(
        &format!("baseline: list the user's namespace ({want} sessions)"),
        &kube_times,
    );
    row(
        &format!("API: a change reaches {} subscriptions", args.subscribers),
        &via_api,
    );
    row(
        &format!("baseline: a change reaches {} watches", args.subscribers),
        &straight,
    );
    let ratio = |a: &[Duration], b: &[Duration], q: f64| {
        percentile(a, q).as_secs_f64() / percentile(b, q).as_secs_f64().max(1e-9)
    };
    println!(
        "ratio API / Kubernetes API (p99): query {:.2}, fan-out {:.2}",
        ratio(&api_times, &kube_times, 0.99),
        ratio(&via_api, &straight, 0.99)
    );
    let met = |ok: bool| if ok { "met" } else { "NOT met" };
    println!(
        "targets: query p99 < 20 ms {}; fan-out p99 < 100 ms {}",
        met(percentile(&api_times, 0.99) < Duration::from_millis(20)),
        met(percentile(&via_api, 0.99) < Duration::from_millis(100)),
    );
    Ok(ExitCode::SUCCESS)
}
