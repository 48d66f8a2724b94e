//! The HTML page behind the Details link shows the test as it is now.

mod common;

use std::time::Duration;

use common::start;

async fn page(h: &common::Harness, path: &str) -> (u16, String) {
    let response = h.client.get(h.url(path)).send().await.unwrap();
    let status = response.status().as_u16();
    let ct = response
        .headers()
        .get("content-type")
        .unwrap()
        .to_str()
        .unwrap()
        .to_string();
    assert!(ct.starts_with("text/html"), "{ct}");
    (status, response.text().await.unwrap())
}

#[tokio::test]
async fn the_page_shows_status_and_progress_as_time_passes() {
    let h = start().await;
    let id = h
        .create_ok("two-hours", "checkout.jmx", Some("cp-job-1"))
        .await;
    h.advance_to(Duration::from_secs(30 * 60));
    let (status, html) = page(&h, &format!("/jobs/{id}")).await;
    assert_eq!(status, 200);
    assert!(html.contains(&format!("<h1>Load test {id}</h1>")), "{html}");
    assert!(
        html.contains(r#"<span class="status running" id="status">running</span>"#),
        "{html}"
    );
    assert!(
        html.contains(r#"<progress value="25" max="100">"#),
        "{html}"
    );
    assert!(html.contains("25% complete"));
    assert!(
        html.contains("checkout.jmx") && html.contains("two-hours") && html.contains("cp-job-1")
    );
    assert!(
        html.contains("+02:00:00"),
        "the page says when it ends: {html}"
    );
    assert!(
        html.contains(r#"http-equiv="refresh""#),
        "a running test's page refreshes itself"
    );

    h.advance_to(Duration::from_secs(2 * 3600));
    let (_, html) = page(&h, &format!("/jobs/{id}")).await;
    assert!(html.contains(r#"id="status">passed</span>"#), "{html}");
    assert!(html.contains("100% complete"));
    assert!(
        html.contains("<th>Finished</th><td>2025-01-01T02:00:00.000Z (+02:00:00)</td>"),
        "{html}"
    );
    assert!(
        !html.contains("http-equiv"),
        "a finished page stops refreshing"
    );
}

#[tokio::test]
async fn a_failed_test_shows_its_reason() {
    let h = start().await;
    let id = h.create_ok("spike", "a.jmx", None).await;
    h.advance_to(Duration::from_secs(600));
    let (_, html) = page(&h, &format!("/jobs/{id}")).await;
    assert!(html.contains(r#"id="status">failed</span>"#), "{html}");
    assert!(
        html.contains("failed: p95 response time 2300 ms &gt; 2000 ms"),
        "{html}"
    );
}

#[tokio::test]
async fn client_text_is_escaped() {
    let h = start().await;
    let id = h
        .create_ok(
            "soak",
            "<script>alert('x')</script>.jmx",
            Some("\"><img src=x>"),
        )
        .await;
    let (_, html) = page(&h, &format!("/jobs/{id}")).await;
    assert!(
        !html.contains("<script>") && !html.contains("<img"),
        "{html}"
    );
    assert!(
        html.contains("&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;.jmx"),
        "{html}"
    );
    let (_, index) = page(&h, "/").await;
    assert!(!index.contains("<script>"), "{index}");
}

#[tokio::test]
async fn an_unknown_test_is_a_404_page() {
    let h = start().await;
    let (status, html) = page(&h, "/jobs/424242").await;
    assert_eq!(status, 404);
    assert!(
        html.contains("Load test not found") && html.contains("424242"),
        "{html}"
    );
    let (status, html) = page(&h, "/jobs/%3Cb%3E").await;
    assert_eq!(status, 404);
    assert!(
        html.contains("&lt;b&gt;") && !html.contains("<b>"),
        "{html}"
    );
}

#[tokio::test]
async fn the_index_lists_every_test_with_a_link() {
    let h = start().await;
    let a = h.create_ok("soak", "a.jmx", None).await;
    let b = h.create_ok("spike", "b.jmx", None).await;
    let (status, html) = page(&h, "/").await;
    assert_eq!(status, 200);
    for id in [a, b] {
        assert!(
            html.contains(&format!(r#"<a href="/jobs/{id}">{id}</a>"#)),
            "{html}"
        );
    }
}

#[tokio::test]
async fn the_details_url_points_at_the_page() {
    let h = start().await;
    let created: serde_json::Value = h.create("soak", "a.jmx", None).await.json().await.unwrap();
    let url = created["detailsUrl"].as_str().unwrap();
    assert_eq!(url, format!("{}/jobs/{}", h.base, created["jobId"]));
    let response = h.client.get(url).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert!(response.text().await.unwrap().contains("running"));
}
