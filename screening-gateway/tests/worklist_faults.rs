//! The worklist under faults: it answers what it can, refuses what it cannot with a status, and
//! keeps serving — a query whose key it cannot read, a SOP class it does not offer, bytes that are
//! not DICOM, a modality that vanishes mid-query, a query it cancels, and queries while orders
//! arrive.

use chrono::Utc;
use screening_gateway::testing::{start_worklist, worklist_order, Worklist};
use screening_gateway::worklist::modality::{self, Modality};
use tokio::io::AsyncWriteExt;

async fn machine(worklist: &Worklist) -> Modality {
    Modality::connect(
        &format!("127.0.0.1:{}", worklist.port),
        "MAMMO1",
        "SCREENING_MWL",
    )
    .await
    .expect("the worklist accepts the machine")
}

async fn schedule(worklist: &Worklist, n: usize) {
    for _ in 0..n {
        let order = worklist_order("Janet", "Williams", "2026-07-14T08:30:00Z", "");
        worklist.store.store(&order, Utc::now()).await.unwrap();
    }
}

#[tokio::test]
async fn a_key_it_cannot_read_gets_a_failure_status_and_the_association_goes_on() {
    let worklist = start_worklist(Vec::new()).await;
    schedule(&worklist, 1).await;
    let mut machine = machine(&worklist).await;
    let refused = machine
        .find(&modality::todays_query("14/07/2026", ""))
        .await
        .unwrap();
    assert_eq!(refused.status, 0xA900);
    assert!(refused.matches.is_empty());
    let answered = machine
        .find(&modality::todays_query("20260714", ""))
        .await
        .unwrap();
    assert_eq!((answered.status, answered.matches.len()), (0x0000, 1));
    machine.release().await.unwrap();
}

#[tokio::test]
async fn bytes_that_are_not_dicom_and_a_vanishing_modality_leave_it_serving() {
    let worklist = start_worklist(Vec::new()).await;
    schedule(&worklist, 200).await;

    let mut junk = tokio::net::TcpStream::connect(("127.0.0.1", worklist.port))
        .await
        .unwrap();
    junk.write_all(b"GET / HTTP/1.1\r\nHost: worklist\r\n\r\n")
        .await
        .unwrap();
    drop(junk);

    let vanishing = machine(&worklist).await;
    vanishing
        .find_and_vanish(&modality::todays_query("20260714", ""))
        .await
        .unwrap();

    let mut machine = machine(&worklist).await;
    let answer = machine
        .find(&modality::todays_query("20260714", ""))
        .await
        .unwrap();
    assert_eq!((answer.status, answer.matches.len()), (0x0000, 200));
    machine.release().await.unwrap();
}

#[tokio::test]
async fn a_sop_class_it_does_not_offer_is_refused_at_association() {
    let worklist = start_worklist(Vec::new()).await;
    // Patient Root Query/Retrieve FIND only: nothing this worklist serves.
    let refused = dicom_ul::association::ClientAssociationOptions::new()
        .calling_ae_title("MAMMO1")
        .called_ae_title("SCREENING_MWL")
        .with_presentation_context("1.2.840.10008.5.1.4.1.2.1.1", vec!["1.2.840.10008.1.2"])
        .establish_async(("127.0.0.1", worklist.port))
        .await;
    assert!(refused.is_err(), "no acceptable presentation context");
    let mut machine = machine(&worklist).await;
    assert_eq!(
        machine
            .find(&modality::todays_query("", ""))
            .await
            .unwrap()
            .status,
        0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queries_while_fifty_orders_arrive_see_whole_items_and_then_all_of_them() {
    let worklist = start_worklist(Vec::new()).await;
    let store = worklist.store.clone();
    let arriving = tokio::spawn(async move {
        for _ in 0..50 {
            let order = worklist_order("Zoë", "Ng", "2026-07-14T08:30:00Z", "");
            store.store(&order, Utc::now()).await.unwrap();
        }
    });
    let mut machine = machine(&worklist).await;
    let mut seen = Vec::new();
    while !arriving.is_finished() {
        let answer = machine
            .find(&modality::todays_query("20260714", ""))
            .await
            .unwrap();
        assert_eq!(answer.status, 0);
        assert!(answer
            .matches
            .iter()
            .all(|found| modality::summary(found).patient_name == "NG^Zoë"));
        seen.push(answer.matches.len());
    }
    arriving.await.unwrap();
    assert!(seen.windows(2).all(|w| w[0] <= w[1]), "{seen:?}");
    let answer = machine
        .find(&modality::todays_query("20260714", ""))
        .await
        .unwrap();
    assert_eq!(answer.matches.len(), 50);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_c_cancel_stops_a_long_answer_and_the_association_goes_on() {
    let worklist = start_worklist(Vec::new()).await;
    schedule(&worklist, 2_000).await;
    let mut machine = machine(&worklist).await;
    let query = modality::todays_query("20260714", "");

    let cancelled = machine.find_then_cancel(&query, 1).await.unwrap();
    assert_eq!(cancelled.status, 0xFE00, "the Cancel status");
    assert!(
        cancelled.matches.len() < 2_000,
        "matching stopped: {} of 2,000 sent",
        cancelled.matches.len()
    );

    let answer = machine.find(&query).await.unwrap();
    assert_eq!((answer.status, answer.matches.len()), (0x0000, 2_000));
    machine.release().await.unwrap();
}
