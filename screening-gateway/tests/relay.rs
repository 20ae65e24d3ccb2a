//! The Hybrid Connections client against the project's local relay, over real WebSockets on loopback.

use std::time::Duration;

use screening_core::prelude::*;
use screening_gateway::relay::client::{
    listen, send_message, ListenerTiming, RelayError, RelaySender,
};
use screening_gateway::relay::local::LocalRelay;
use screening_gateway::testing::{
    relay_endpoint, sample_message, start_local_relay, RELAY_LISTEN_KEY, RELAY_SEND_KEY,
};
use tokio::sync::watch;

const LISTEN_KEY: &str = RELAY_LISTEN_KEY;
const SEND_KEY: &str = RELAY_SEND_KEY;

async fn start_relay() -> (LocalRelay, String) {
    start_local_relay().await
}

/// A listener's handler that answers "processed".
async fn processed(message: GatewayMessage) -> RelayReply {
    RelayReply {
        status: RelayStatus::Processed,
        message_id: message.message_id,
        reason: None,
    }
}

/// Starts a listener that answers "processed" to everything; returns its stop switch.
async fn start_listener(relay: &LocalRelay, base_url: &str) -> watch::Sender<bool> {
    start_listener_with(relay, base_url, processed).await
}

/// Starts a listener that answers with `handler`; returns its stop switch once it is connected.
async fn start_listener_with<H, F>(
    relay: &LocalRelay,
    base_url: &str,
    handler: H,
) -> watch::Sender<bool>
where
    H: Fn(GatewayMessage) -> F + Clone + Send + Sync + 'static,
    F: std::future::Future<Output = RelayReply> + Send + 'static,
{
    let (stop, stopped) = watch::channel(false);
    tokio::spawn(listen(
        relay_endpoint(base_url, "listen", LISTEN_KEY),
        ListenerTiming::default(),
        handler,
        stopped,
    ));
    for _ in 0..200 {
        if relay.listener_count("leeds") > 0 {
            return stop;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("the listener never connected");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_sent_through_the_relay_is_answered_by_the_listener() {
    let (relay, url) = start_relay().await;
    let _stop = start_listener(&relay, &url).await;
    let sent = sample_message();
    let reply = send_message(
        &relay_endpoint(&url, "send", SEND_KEY),
        &sent,
        Duration::from_secs(5),
    )
    .await
    .unwrap();
    assert_eq!(
        reply,
        RelayReply {
            status: RelayStatus::Processed,
            message_id: sent.message_id,
            reason: None
        }
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_many_times_the_read_buffer_arrives_whole_both_ways() {
    let (relay, url) = start_relay().await;
    // 300 KiB of text: the relay's sockets read 8 KiB at a time.
    let note = "0123456789abcdef".repeat(300 * 64);
    let expected = note.clone();
    let _stop = start_listener_with(&relay, &url, move |message: GatewayMessage| {
        let whole = message.payload["note"] == expected.as_str();
        async move {
            RelayReply {
                status: if whole {
                    RelayStatus::Processed
                } else {
                    RelayStatus::Error
                },
                message_id: message.message_id,
                // The note comes back, so the sender's socket reads a large frame too.
                reason: Some(
                    message.payload["note"]
                        .as_str()
                        .unwrap_or_default()
                        .to_string(),
                ),
            }
        }
    })
    .await;
    let sent = GatewayMessage {
        payload: serde_json::json!({ "resourceType": "ServiceRequest", "note": note }),
        ..sample_message()
    };
    let reply = send_message(
        &relay_endpoint(&url, "send", SEND_KEY),
        &sent,
        Duration::from_secs(10),
    )
    .await
    .unwrap();
    assert_eq!(reply.status, RelayStatus::Processed);
    assert_eq!(reply.reason.as_deref(), Some(note.as_str()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn several_rendezvous_are_served_concurrently() {
    let (relay, url) = start_relay().await;
    let _stop = start_listener(&relay, &url).await;
    let sends: Vec<_> = (0..10)
        .map(|_| {
            let url = url.clone();
            tokio::spawn(async move {
                let sent = sample_message();
                let reply = send_message(
                    &relay_endpoint(&url, "send", SEND_KEY),
                    &sent,
                    Duration::from_secs(5),
                )
                .await;
                (sent.message_id, reply.unwrap().message_id)
            })
        })
        .collect();
    for send in sends {
        let (sent, answered) = send.await.unwrap();
        assert_eq!(sent, answered);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_listener_the_sender_gets_a_404() {
    let (_relay, url) = start_relay().await;
    let error = send_message(
        &relay_endpoint(&url, "send", SEND_KEY),
        &sample_message(),
        Duration::from_secs(5),
    )
    .await
    .unwrap_err();
    assert!(
        matches!(&error, RelayError::NotFound(text) if text.contains("no listeners")),
        "{error}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_key_is_a_401_and_a_key_without_the_right_a_403() {
    let (relay, url) = start_relay().await;
    let _stop = start_listener(&relay, &url).await;
    let wrong = send_message(
        &relay_endpoint(&url, "send", "not-the-key"),
        &sample_message(),
        Duration::from_secs(5),
    )
    .await
    .unwrap_err();
    assert!(
        matches!(&wrong, RelayError::Unauthorized { status: 401, message } if message.contains("invalid signature")),
        "{wrong}"
    );
    assert!(
        wrong.to_string().starts_with("authenticate: HTTP 401"),
        "{wrong}"
    );

    let (_stop_tx, stopped) = watch::channel(false);
    let handler = processed;
    let listening_with_send_key = listen(
        relay_endpoint(&url, "send", SEND_KEY),
        ListenerTiming::default(),
        handler,
        stopped,
    )
    .await;
    assert!(
        matches!(
            listening_with_send_key,
            Err(RelayError::Unauthorized { status: 403, .. })
        ),
        "{listening_with_send_key:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_listener_on_an_unknown_hybrid_connection_stops_with_a_clear_error() {
    let (_relay, url) = start_relay().await;
    let mut unknown = relay_endpoint(&url, "listen", LISTEN_KEY);
    unknown.hybrid_connection = "nowhere".into();
    let (_stop, stopped) = watch::channel(false);
    let handler = processed;
    let result = tokio::time::timeout(
        Duration::from_secs(5),
        listen(unknown, ListenerTiming::default(), handler, stopped),
    )
    .await
    .expect("no endless retry on 404");
    assert!(
        matches!(result, Err(RelayError::NotFound(ref text)) if text.contains("Endpoint does not exist")),
        "{result:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_listener_that_does_not_renew_is_closed_when_its_token_expires_and_reconnects() {
    let (relay, url) = start_relay().await;
    let (_stop, stopped) = watch::channel(false);
    let mut short_lived = relay_endpoint(&url, "listen", LISTEN_KEY);
    short_lived.token_lifetime = Duration::from_secs(2);
    // Renewal would come only as the token runs out (renew_before = 0): too late.
    let timing = ListenerTiming {
        ping_interval: Duration::from_secs(30),
        renew_before: Duration::ZERO,
    };
    let handler = processed;
    tokio::spawn(listen(short_lived, timing, handler, stopped));
    tokio::time::sleep(Duration::from_millis(3500)).await;
    assert!(
        relay.control_channels_accepted() >= 2,
        "closed with 1008 and reconnected"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_listener_renews_its_token_and_keeps_listening() {
    let (relay, url) = start_relay().await;
    let (_stop, stopped) = watch::channel(false);
    let mut short_lived = relay_endpoint(&url, "listen", LISTEN_KEY);
    short_lived.token_lifetime = Duration::from_secs(3);
    let timing = ListenerTiming {
        ping_interval: Duration::from_millis(300),
        renew_before: Duration::from_secs(2),
    };
    let handler = processed;
    tokio::spawn(listen(short_lived, timing, handler, stopped));
    for _ in 0..200 {
        if relay.listener_count("leeds") > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // Several renewals (every second) and pings (every 300 ms) later, the same listener still answers.
    // The relay closes a control channel whose token expires unrenewed, so one accepted channel
    // after 4 s means the renewals worked and nothing reconnected.
    tokio::time::sleep(Duration::from_millis(4000)).await;
    assert_eq!(relay.listener_count("leeds"), 1);
    assert_eq!(relay.control_channels_accepted(), 1);
    let sent = sample_message();
    let reply = send_message(
        &relay_endpoint(&url, "send", SEND_KEY),
        &sent,
        Duration::from_secs(5),
    )
    .await
    .unwrap();
    assert_eq!(reply.message_id, sent.message_id);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wss_endpoint_speaks_tls_as_azure_requires() {
    // A plain TCP server that is not TLS: a wss:// client must attempt a TLS handshake (and fail
    // in the connect phase), not reject the scheme.
    let server = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = server.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = server.accept().await {
            use tokio::io::AsyncWriteExt;
            let _ = socket.write_all(b"HTTP/1.1 400 Bad Request\r\n\r\n").await;
        }
    });
    let error = send_message(
        &relay_endpoint(&format!("wss://{address}"), "send", SEND_KEY),
        &sample_message(),
        Duration::from_secs(5),
    )
    .await
    .unwrap_err();
    let text = error.to_string();
    assert!(text.starts_with("connect:"), "{text}");
    // rustls read the plain-text answer as a TLS record and refused it.
    assert!(
        text.contains("InvalidContentType"),
        "TLS is compiled in: {text}"
    );
}

/// A bare listener control channel, to drive `accept` by hand.
async fn raw_listener(
    url: &str,
) -> tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>> {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let listen = relay_endpoint(url, "listen", LISTEN_KEY);
    let mut request = format!("{url}/$hc/leeds?sb-hc-action=listen")
        .into_client_request()
        .unwrap();
    request
        .headers_mut()
        .insert("ServiceBusAuthorization", listen.token().parse().unwrap());
    tokio_tungstenite::connect_async(request).await.unwrap().0
}

/// Reads the next `accept` from a control channel.
async fn next_accept(
    control: &mut tokio_tungstenite::WebSocketStream<
        tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
    >,
) -> serde_json::Value {
    use futures_util::StreamExt;
    loop {
        let frame = tokio::time::timeout(Duration::from_secs(5), control.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        if let tokio_tungstenite::tungstenite::Message::Text(text) = frame {
            return serde_json::from_str::<serde_json::Value>(&text).unwrap()["accept"].clone();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_listener_can_reject_and_the_sender_sees_its_status_and_description() {
    let (relay, url) = start_relay().await;
    let mut control = raw_listener(&url).await;
    while relay.listener_count("leeds") == 0 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let send = tokio::spawn({
        let url = url.clone();
        async move {
            send_message(
                &relay_endpoint(&url, "send", SEND_KEY),
                &sample_message(),
                Duration::from_secs(5),
            )
            .await
        }
    });
    let accept = next_accept(&mut control).await;
    assert!(
        accept["connectHeaders"]["sec-websocket-key"].is_string(),
        "{accept}"
    );
    assert_eq!(accept["remoteEndpoint"]["address"], "127.0.0.1");
    let address = accept["address"].as_str().unwrap();
    // Our client's reject: the relay answers the dial 410 Gone, which `reject` checks.
    screening_gateway::relay::client::reject(address, 503, "modality offline")
        .await
        .unwrap();
    let error = send.await.unwrap().unwrap_err();
    assert!(
        matches!(&error, RelayError::Rejected { status: 503, message } if message.contains("modality offline")),
        "{error}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rendezvous_address_works_once() {
    let (relay, url) = start_relay().await;
    let mut control = raw_listener(&url).await;
    while relay.listener_count("leeds") == 0 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let send = tokio::spawn({
        let url = url.clone();
        async move {
            send_message(
                &relay_endpoint(&url, "send", SEND_KEY),
                &sample_message(),
                Duration::from_secs(2),
            )
            .await
        }
    });
    let accept = next_accept(&mut control).await;
    let address = accept["address"].as_str().unwrap().to_string();
    let (_first, _) = tokio_tungstenite::connect_async(address.as_str())
        .await
        .unwrap();
    let again = tokio_tungstenite::connect_async(address.as_str())
        .await
        .unwrap_err();
    assert!(
        matches!(&again, tokio_tungstenite::tungstenite::Error::Http(response) if response.status() == 403),
        "{again:?}"
    );
    // Nobody answers on the accepted rendezvous, so the sender gives up waiting for a reply.
    assert!(matches!(
        send.await.unwrap(),
        Err(RelayError::AwaitReply(_))
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_are_spread_over_several_listeners() {
    let (relay, url) = start_relay().await;
    let mut stops = Vec::new();
    for name in ["first", "second"] {
        let (stop, stopped) = watch::channel(false);
        let handler = move |m: GatewayMessage| async move {
            RelayReply {
                status: RelayStatus::Processed,
                message_id: m.message_id,
                reason: Some(name.into()),
            }
        };
        tokio::spawn(listen(
            relay_endpoint(&url, "listen", LISTEN_KEY),
            ListenerTiming::default(),
            handler,
            stopped,
        ));
        stops.push(stop);
    }
    while relay.listener_count("leeds") < 2 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let mut answered_by = std::collections::HashSet::new();
    for _ in 0..30 {
        let reply = send_message(
            &relay_endpoint(&url, "send", SEND_KEY),
            &sample_message(),
            Duration::from_secs(5),
        )
        .await
        .unwrap();
        answered_by.insert(reply.reason.unwrap());
    }
    assert_eq!(
        answered_by.len(),
        2,
        "both listeners served connections: {answered_by:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frame_that_is_not_a_gateway_message_gets_no_reply_and_the_listener_goes_on() {
    use futures_util::{SinkExt, StreamExt};
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    use tokio_tungstenite::tungstenite::Message;

    let (relay, url) = start_relay().await;
    let handled = Arc::new(AtomicUsize::new(0));
    let (_stop, stopped) = watch::channel(false);
    let counting = {
        let handled = handled.clone();
        move |message: GatewayMessage| {
            handled.fetch_add(1, Ordering::SeqCst);
            processed(message)
        }
    };
    tokio::spawn(listen(
        relay_endpoint(&url, "listen", LISTEN_KEY),
        ListenerTiming::default(),
        counting,
        stopped,
    ));
    screening_gateway::testing::until_listening(&relay).await;

    // A sender holding the send key, but sending something that is not a gateway message.
    let sender = relay_endpoint(&url, "send", SEND_KEY);
    let mut request = format!("{url}/$hc/leeds?sb-hc-action=connect&sb-hc-id=garbage")
        .into_client_request()
        .unwrap();
    request
        .headers_mut()
        .insert("ServiceBusAuthorization", sender.token().parse().unwrap());
    let (mut socket, _) = tokio_tungstenite::connect_async(request).await.unwrap();
    socket
        .send(Message::Text("{\"message_id\": \"not a uuid\"}".into()))
        .await
        .unwrap();
    let answer = tokio::time::timeout(Duration::from_secs(5), async {
        while let Some(frame) = socket.next().await {
            match frame {
                Ok(Message::Text(text)) => return Some(text.to_string()),
                Ok(Message::Close(_)) | Err(_) => return None,
                Ok(_) => continue,
            }
        }
        None
    })
    .await
    .expect("the listener closes the rendezvous");
    assert_eq!(answer, None, "no reply to what is not a gateway message");
    assert_eq!(handled.load(Ordering::SeqCst), 0, "nothing was handled");

    // The listener still serves proper messages.
    let sent = sample_message();
    let reply = send_message(&sender, &sent, Duration::from_secs(5))
        .await
        .unwrap();
    assert_eq!(reply.status, RelayStatus::Processed);
    assert_eq!(handled.load(Ordering::SeqCst), 1);
}

/// A message like [`sample_message`] with an id of its own.
fn numbered_message(n: u128) -> GatewayMessage {
    GatewayMessage {
        message_id: MessageId::from_uuid(uuid::Uuid::from_u128(n)),
        ..sample_message()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sender_keeps_its_rendezvous_open_for_the_messages_that_follow() {
    let (relay, url) = start_relay().await;
    let _stop = start_listener(&relay, &url).await;
    let mut sender = RelaySender::new(
        relay_endpoint(&url, "send", SEND_KEY),
        Duration::from_secs(60),
    );
    for n in 1..=5 {
        let sent = numbered_message(n);
        let reply = sender.send(&sent, Duration::from_secs(5)).await.unwrap();
        assert_eq!(reply.message_id, sent.message_id);
        assert_eq!(reply.status, RelayStatus::Processed);
    }
    assert_eq!(
        relay.rendezvous_accepted(),
        1,
        "five messages, one rendezvous"
    );

    // Kept open no longer than its idle limit: after that the next message opens a new one.
    let mut brief = RelaySender::new(relay_endpoint(&url, "send", SEND_KEY), Duration::ZERO);
    for n in 6..=7 {
        brief
            .send(&numbered_message(n), Duration::from_secs(5))
            .await
            .unwrap();
    }
    assert_eq!(relay.rendezvous_accepted(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rendezvous_the_listener_closed_is_replaced_and_the_message_still_arrives() {
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::Message;
    let (relay, url) = start_relay().await;
    let mut control = raw_listener(&url).await;
    while relay.listener_count("leeds") == 0 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // A listener that serves one message per rendezvous and then closes it, as agents before
    // kept rendezvous did; it records what reached it.
    let (arrived_tx, mut arrived) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        loop {
            let accept = next_accept(&mut control).await;
            let address = accept["address"].as_str().unwrap().to_string();
            let (mut socket, _) = tokio_tungstenite::connect_async(address.as_str())
                .await
                .unwrap();
            while let Some(Ok(frame)) = socket.next().await {
                if let Message::Text(text) = frame {
                    let message: GatewayMessage = serde_json::from_str(&text).unwrap();
                    let reply = RelayReply {
                        status: RelayStatus::Processed,
                        message_id: message.message_id,
                        reason: None,
                    };
                    socket
                        .send(Message::Text(serde_json::to_string(&reply).unwrap().into()))
                        .await
                        .unwrap();
                    arrived_tx.send(message.message_id).unwrap();
                    break;
                }
            }
            let _ = socket.close(None).await;
        }
    });
    let mut sender = RelaySender::new(
        relay_endpoint(&url, "send", SEND_KEY),
        Duration::from_secs(60),
    );
    for n in 1..=3 {
        let sent = numbered_message(n);
        let reply = sender.send(&sent, Duration::from_secs(5)).await.unwrap();
        assert_eq!(reply.message_id, sent.message_id);
        assert_eq!(arrived.recv().await, Some(sent.message_id));
    }
    assert_eq!(relay.rendezvous_accepted(), 3);
    assert!(arrived.try_recv().is_err(), "each message arrived once");
}
