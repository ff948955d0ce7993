//! Benchmark (not a test): creates 10 000 ports through the REST API over real HTTP, with the
//! memory store and with redb (fsync per commit), and prints requests per second.
//! `cargo run --release -p strowger --example api_ports [PORTS] [CONCURRENCY]`.

use std::time::Instant;

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let ports: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(10_000);
    let workers: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(16);
    let rt = tokio::runtime::Runtime::new()?;
    rt.block_on(async {
        for in_memory in [true, false] {
            let dir = tempfile::tempdir()?;
            let net = strowger::api::topology::open_network(dir.path(), in_memory)?;
            let app = strowger::api::app(vec![strowger::api::topology::routes(net)]);
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
            let base = format!("http://{}/api/v1", listener.local_addr()?);
            let server = tokio::spawn(async move { axum::serve(listener, app).await });
            let http = reqwest::Client::new();
            let bridge: serde_json::Value = http
                .post(format!("{base}/bridges"))
                .json(&serde_json::json!({"name": "bench"}))
                .send()
                .await?
                .json()
                .await?;
            let url = format!("{base}/bridges/{}/ports", bridge["id"].as_str().unwrap_or_default());
            let t = Instant::now();
            let mut tasks = tokio::task::JoinSet::new();
            for w in 0..workers {
                let (http, url) = (http.clone(), url.clone());
                let n = ports / workers + usize::from(w < ports % workers);
                tasks.spawn(async move {
                    for _ in 0..n {
                        let r = http.post(&url).json(&serde_json::json!({})).send().await?;
                        anyhow::ensure!(r.status() == 201, "status {}", r.status());
                    }
                    anyhow::Ok(())
                });
            }
            while let Some(r) = tasks.join_next().await {
                r??;
            }
            let secs = t.elapsed().as_secs_f64();
            println!(
                "{}: {ports} ports via POST in {secs:.2}s = {:.0} req/s ({workers} concurrent clients)",
                if in_memory { "memory store" } else { "redb store (fsync per commit)" },
                ports as f64 / secs
            );
            server.abort();
        }
        anyhow::Ok(())
    })
}
