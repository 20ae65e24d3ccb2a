//! PostgreSQL over TLS: `sslmode=require` encrypts, `verify-full` with `sslrootcert` also checks
//! the server's certificate and name, against the local server's own self-signed certificate.
//! Under CI a server without TLS fails these tests; elsewhere they skip with a notice.

use screening_store::testing::TestStore;
use screening_store::PgStore;

/// The local server's certificate file (the server runs on this machine), or `None` with a
/// notice when it does not offer TLS outside CI.
async fn server_certificate(store: &PgStore) -> Option<String> {
    let ssl: String = sqlx::query_scalar("SHOW ssl")
        .fetch_one(store.pool())
        .await
        .unwrap();
    if ssl != "on" {
        assert_ne!(
            std::env::var("CI").as_deref(),
            Ok("true"),
            "the PostgreSQL server has ssl = off: TLS cannot be tested"
        );
        eprintln!("NOTICE: skipping the TLS tests: the PostgreSQL server has ssl = off");
        return None;
    }
    let file: String = sqlx::query_scalar("SHOW ssl_cert_file")
        .fetch_one(store.pool())
        .await
        .unwrap();
    let path = if file.starts_with('/') {
        file
    } else {
        let data: String = sqlx::query_scalar("SHOW data_directory")
            .fetch_one(store.pool())
            .await
            .unwrap();
        format!("{data}/{file}")
    };
    Some(path)
}

async fn encrypted(store: &PgStore) -> bool {
    sqlx::query_scalar("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
        .fetch_one(store.pool())
        .await
        .unwrap()
}

fn with_query(url: &str, query: &str) -> String {
    let separator = if url.contains('?') { '&' } else { '?' };
    format!("{url}{separator}{query}")
}

#[tokio::test]
async fn the_store_connects_over_tls_and_checks_the_certificate_when_asked() {
    let Some(test) = TestStore::postgres().await else {
        return;
    };
    let plain = test.postgres.clone().unwrap();
    let Some(certificate) = server_certificate(&plain).await else {
        test.cleanup().await;
        return;
    };

    let required = PgStore::connect(&with_query(&test.url, "sslmode=require"))
        .await
        .expect("sslmode=require connects");
    assert!(encrypted(&required).await, "sslmode=require is encrypted");
    assert!(
        !encrypted(
            &PgStore::connect(&with_query(&test.url, "sslmode=disable"))
                .await
                .unwrap()
        )
        .await,
        "the check can tell a plain connection"
    );

    // The server's certificate names localhost: verify-full checks the chain and that name.
    let localhost = test.url.replace("@127.0.0.1:", "@localhost:");
    let verified = PgStore::connect(&with_query(
        &localhost,
        &format!("sslmode=verify-full&sslrootcert={certificate}"),
    ))
    .await
    .expect("verify-full with the server's certificate as the root connects");
    assert!(encrypted(&verified).await);

    let untrusted = PgStore::connect(&with_query(&localhost, "sslmode=verify-full"))
        .await
        .err()
        .expect("a self-signed certificate is not trusted without sslrootcert");
    let wrong_name = PgStore::connect(&with_query(
        &test.url,
        &format!("sslmode=verify-full&sslrootcert={certificate}"),
    ))
    .await
    .err()
    .expect("the certificate names localhost, not 127.0.0.1");
    for (error, why) in [
        (untrusted.to_string(), "UnknownIssuer"),
        (wrong_name.to_string(), "not valid for name"),
    ] {
        assert!(
            error.starts_with("connect to ") && error.contains("invalid peer certificate"),
            "{error}"
        );
        assert!(error.contains(why), "{why:?} not in {error}");
    }
    test.cleanup().await;
}
