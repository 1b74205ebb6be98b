//! A real moto server (AWS emulator) on 127.0.0.1, one per test, plus SDK clients pointed at it.
//! `make test` installs moto into `.venv-test`; `SPLITGATE_MOTO` overrides the binary's path.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use aws_sdk_dynamodb::types::{AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType};

pub struct Moto {
    child: Option<Child>,
    pub url: String,
}

fn binary() -> PathBuf {
    let path = std::env::var_os("SPLITGATE_MOTO")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/.venv-test/bin/moto_server")));
    assert!(
        path.exists(),
        "moto_server not found at {}: run `make test` (it installs moto into .venv-test)",
        path.display()
    );
    path
}

impl Moto {
    pub async fn start() -> Moto {
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        Self::start_on(port).await
    }

    /// A fresh (empty) emulator on `port`: how a test brings DynamoDB "back".
    pub async fn start_on(port: u16) -> Moto {
        let child = Command::new(binary())
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        // Owned before waiting, so a failed start still kills (and reaps) the process on drop.
        let moto = Moto { child: Some(child), url: format!("http://127.0.0.1:{port}") };
        let c = super::client();
        super::wait_until(Duration::from_secs(30), &format!("moto did not start on port {port}"), || async {
            let req = http::Request::get(format!("{}/moto-api/", moto.url)).body(Default::default()).unwrap();
            matches!(c.request(req).await, Ok(r) if r.status().is_success())
        })
        .await;
        moto
    }

    /// Kills the emulator (DynamoDB "going away").
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    fn sdk_http() -> aws_sdk_dynamodb::config::SharedHttpClient {
        use aws_smithy_http_client::tls::{rustls_provider::CryptoMode, Provider};
        aws_smithy_http_client::Builder::new().tls_provider(Provider::Rustls(CryptoMode::Ring)).build_https()
    }

    pub fn dynamodb(&self) -> aws_sdk_dynamodb::Client {
        let conf = aws_sdk_dynamodb::Config::builder()
            .behavior_version(aws_sdk_dynamodb::config::BehaviorVersion::latest())
            .region(aws_sdk_dynamodb::config::Region::new("us-east-1"))
            .endpoint_url(&self.url)
            .credentials_provider(aws_sdk_dynamodb::config::Credentials::new("testing", "testing", None, None, "test"))
            .http_client(Self::sdk_http())
            .build();
        aws_sdk_dynamodb::Client::from_conf(conf)
    }

    pub fn cloudwatch(&self) -> aws_sdk_cloudwatch::Client {
        let conf = aws_sdk_cloudwatch::Config::builder()
            .behavior_version(aws_sdk_cloudwatch::config::BehaviorVersion::latest())
            .region(aws_sdk_cloudwatch::config::Region::new("us-east-1"))
            .endpoint_url(&self.url)
            .credentials_provider(aws_sdk_cloudwatch::config::Credentials::new(
                "testing", "testing", None, None, "test",
            ))
            .http_client(Self::sdk_http())
            .build();
        aws_sdk_cloudwatch::Client::from_conf(conf)
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.url.rsplit(':').next().and_then(|p| p.parse().ok()).unwrap()
    }

    /// Creates a table with string partition key `pk` and sort key `sk` (the fleet table's shape).
    pub async fn create_table_pk_sk(&self, name: &str) {
        let attr = |n: &str| {
            AttributeDefinition::builder().attribute_name(n).attribute_type(ScalarAttributeType::S).build().unwrap()
        };
        let key = |n: &str, t| KeySchemaElement::builder().attribute_name(n).key_type(t).build().unwrap();
        self.dynamodb()
            .create_table()
            .table_name(name)
            .attribute_definitions(attr("pk"))
            .attribute_definitions(attr("sk"))
            .key_schema(key("pk", KeyType::Hash))
            .key_schema(key("sk", KeyType::Range))
            .billing_mode(BillingMode::PayPerRequest)
            .send()
            .await
            .unwrap();
    }

    /// Creates a table with a single string partition key.
    pub async fn create_table(&self, name: &str, key: &str) {
        self.dynamodb()
            .create_table()
            .table_name(name)
            .attribute_definitions(
                AttributeDefinition::builder()
                    .attribute_name(key)
                    .attribute_type(ScalarAttributeType::S)
                    .build()
                    .unwrap(),
            )
            .key_schema(KeySchemaElement::builder().attribute_name(key).key_type(KeyType::Hash).build().unwrap())
            .billing_mode(BillingMode::PayPerRequest)
            .send()
            .await
            .unwrap();
    }

    /// Queues SageMaker Runtime answers (moto's own API; each distinct request takes the next).
    pub async fn seed_sagemaker(&self, bodies: &[&str]) {
        let results: Vec<_> = bodies
            .iter()
            .map(|b| serde_json::json!({"Body": b, "ContentType": "application/json", "InvokedProductionVariant": "AllTraffic", "CustomAttributes": ""}))
            .collect();
        let payload = serde_json::json!({"account_id": "123456789012", "region": "us-east-1", "results": results});
        let req = http::Request::post(format!("{}/moto-api/static/sagemaker/endpoint-results", self.url))
            .header("content-type", "application/json")
            .body(http_body_util::Full::new(bytes::Bytes::from(payload.to_string())))
            .unwrap();
        let (status, _, body) = super::send(req).await;
        assert!(status.is_success(), "seeding failed: {status} {}", String::from_utf8_lossy(&body));
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        self.stop();
    }
}
