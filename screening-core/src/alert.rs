//! Alerts: what operations staff must hear before the clinic notices. An alert opens once when its
//! condition becomes true, stays open while it holds, and resolves when it stops holding; each
//! transition is an event that is kept and sent on (webhooks).
//!
//! Pure: the store reports what it sees of each gateway ([`GatewayObservation`]), [`conditions`]
//! says which conditions hold now, and [`reconcile`] turns them and the alerts already open into
//! the changes to make. The clock is passed in.

use chrono::{DateTime, TimeDelta, Utc};
use serde::{Deserialize, Serialize};

use crate::ids::{GatewayId, SettingId};
use crate::london;

/// What an alert is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertRule {
    /// The gateway has not called the hub for longer than the threshold.
    GatewaySilent,
    /// A message has waited for the gateway longer than the threshold: orders are not reaching
    /// the modality.
    MessagesWaiting,
    /// Messages to the gateway failed and have not been resent successfully.
    MessagesFailed,
    /// The gateway's echoes have not come back good for longer than the threshold: its path
    /// carries nothing, whatever its connection looks like.
    GatewayUnproven,
    /// A relay gateway's agent says its relay listener is disconnected: pushed orders wait.
    RelayListenerAbsent,
    /// No modality has queried the gateway's worklist today and the day's first slot has
    /// passed: the modality will not show the participants.
    WorklistNotQueried,
}

impl AlertRule {
    /// Every rule.
    pub const ALL: [AlertRule; 6] = [
        AlertRule::GatewaySilent,
        AlertRule::MessagesWaiting,
        AlertRule::MessagesFailed,
        AlertRule::GatewayUnproven,
        AlertRule::RelayListenerAbsent,
        AlertRule::WorklistNotQueried,
    ];

    /// The stored and sent code (`gateway_silent`, `messages_waiting`, `messages_failed`).
    pub fn code(self) -> &'static str {
        match self {
            AlertRule::GatewaySilent => "gateway_silent",
            AlertRule::MessagesWaiting => "messages_waiting",
            AlertRule::MessagesFailed => "messages_failed",
            AlertRule::GatewayUnproven => "gateway_unproven",
            AlertRule::RelayListenerAbsent => "relay_listener_absent",
            AlertRule::WorklistNotQueried => "worklist_not_queried",
        }
    }

    /// The rule with this code.
    pub fn parse(code: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|rule| rule.code() == code)
    }
}

/// What happened to an alert: the two events a webhook hears of.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertTransition {
    /// Its condition became true.
    Opened,
    /// Its condition stopped being true.
    Resolved,
}

impl AlertTransition {
    /// The stored and sent code (`opened`, `resolved`).
    pub fn code(self) -> &'static str {
        match self {
            AlertTransition::Opened => "opened",
            AlertTransition::Resolved => "resolved",
        }
    }

    /// The transition with this code.
    pub fn parse(code: &str) -> Option<Self> {
        [AlertTransition::Opened, AlertTransition::Resolved]
            .into_iter()
            .find(|transition| transition.code() == code)
    }
}

/// When each rule fires. Every threshold can be set on its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AlertThresholds {
    /// A gateway not heard from for longer than this is silent. Keep it above the agent's
    /// heartbeat interval and long-poll wait (the hub records contact at a poll's start).
    pub gateway_silent: TimeDelta,
    /// A message pending longer than this is not being delivered.
    pub oldest_pending: TimeDelta,
    /// This many unresolved failures open the failure alert (at least 1).
    pub failed_messages: u64,
    /// A gateway whose echoes are failing or unanswered, and last came back good longer ago
    /// than this, is unproven. Keep it above the echo period.
    pub unproven: TimeDelta,
    /// A relay gateway whose agent has reported its listener disconnected for longer than
    /// this has an absent listener.
    pub listener_absent: TimeDelta,
    /// How long after the day's first slot a worklist may go unqueried.
    pub worklist_grace: TimeDelta,
}

impl Default for AlertThresholds {
    fn default() -> Self {
        Self {
            gateway_silent: TimeDelta::minutes(10),
            oldest_pending: TimeDelta::minutes(5),
            failed_messages: 1,
            unproven: TimeDelta::minutes(15),
            listener_absent: TimeDelta::minutes(2),
            worklist_grace: TimeDelta::zero(),
        }
    }
}

/// What the store sees of one gateway at one moment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GatewayObservation {
    /// The gateway.
    pub gateway_id: GatewayId,
    /// Its display name ("Leeds gateway").
    pub gateway_name: String,
    /// The setting whose clinics it serves (where the banner shows).
    pub setting_id: SettingId,
    /// When it was set up: a gateway never heard from is silent from then.
    pub created_at: DateTime<Utc>,
    /// When it last called the hub.
    pub last_seen_at: Option<DateTime<Utc>>,
    /// When its oldest pending message was created.
    pub oldest_pending_at: Option<DateTime<Utc>>,
    /// Failed messages that are still their appointment's latest (not resent).
    pub unresolved_failures: u64,
    /// When the earliest of those failed.
    pub earliest_failure_at: Option<DateTime<Utc>>,
    /// Its echoes: what the last one proved, and the one in flight.
    pub echo: crate::echo::EchoRecord,
    /// Orders reach it by relay push, so its listener must be connected.
    pub pushes_by_relay: bool,
    /// What its agent's last heartbeat said of its relay listener (connected or not), and
    /// since when the hub has heard so; `None` when it said nothing.
    pub relay_listener: Option<(bool, DateTime<Utc>)>,
    /// Its agent serves a DICOM worklist (per its last heartbeat).
    pub serves_worklist: bool,
    /// When a modality last queried that worklist.
    pub worklist_queried_at: Option<DateTime<Utc>>,
    /// The first slot of today (UK day) in its setting's clinics.
    pub first_slot_today: Option<DateTime<Utc>>,
}

/// A condition that holds now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlertCondition {
    /// Which rule.
    pub rule: AlertRule,
    /// Which gateway.
    pub gateway_id: GatewayId,
    /// The gateway's setting (where the banner shows).
    pub setting_id: SettingId,
    /// Since when it has been true.
    pub since: DateTime<Utc>,
    /// What staff read, in a sentence that says what to do.
    pub summary: String,
}

/// An alert that is open, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenAlert {
    /// The stored alert's number.
    pub id: i64,
    /// Which rule.
    pub rule: AlertRule,
    /// Which gateway.
    pub gateway_id: GatewayId,
}

/// A change to make to the stored alerts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AlertChange {
    /// A condition became true: open an alert for it.
    Open(AlertCondition),
    /// An open alert's condition is no longer true: resolve it.
    Resolve(OpenAlert),
}

/// The conditions that hold at `now`.
pub fn conditions(
    observations: &[GatewayObservation],
    thresholds: &AlertThresholds,
    now: DateTime<Utc>,
) -> Vec<AlertCondition> {
    let mut holding = Vec::new();
    for gateway in observations {
        let condition = |rule, since, summary| AlertCondition {
            rule,
            gateway_id: gateway.gateway_id,
            setting_id: gateway.setting_id,
            since,
            summary,
        };
        let heard = gateway.last_seen_at.unwrap_or(gateway.created_at);
        if now - heard > thresholds.gateway_silent {
            let since = match gateway.last_seen_at {
                Some(at) => format!("since {}", wall_clock(at, now)),
                None => "since it was set up".to_string(),
            };
            holding.push(condition(
                AlertRule::GatewaySilent,
                heard,
                format!(
                    "The {} has not been heard from {since}. Check that it is running.",
                    gateway.gateway_name
                ),
            ));
        }
        if let Some(oldest) = gateway.oldest_pending_at {
            if now - oldest > thresholds.oldest_pending {
                holding.push(condition(
                    AlertRule::MessagesWaiting,
                    oldest,
                    format!(
                        "Messages to the {} are not being delivered since {}. Use the manual process.",
                        gateway.gateway_name,
                        wall_clock(oldest, now)
                    ),
                ));
            }
        }
        // Only while echoes are being sent and not coming back good: a gateway never echoed, or
        // whose last echo came back good, is not judged by this rule.
        let echo = &gateway.echo;
        let troubled = echo.requested_at.is_some() || echo.answered_at != echo.proven_at;
        let proven = echo.proven_at.unwrap_or(gateway.created_at);
        if troubled && now - proven > thresholds.unproven {
            let since = match echo.proven_at {
                Some(at) => format!("since {}", wall_clock(at, now)),
                None => "since it was set up".to_string(),
            };
            let why = match echo.proof(now) {
                crate::echo::Proof::NotProven { why, .. } => format!(" ({why})"),
                _ => String::new(),
            };
            holding.push(condition(
                AlertRule::GatewayUnproven,
                proven,
                format!(
                    "Orders cannot be shown to reach the {} {since}{why}. Check the gateway; use the manual process until it is proven again.",
                    gateway.gateway_name
                ),
            ));
        }
        if let (true, Some((false, since))) = (gateway.pushes_by_relay, gateway.relay_listener) {
            if now - since > thresholds.listener_absent {
                holding.push(condition(
                    AlertRule::RelayListenerAbsent,
                    since,
                    format!(
                        "The {}'s relay listener has been disconnected since {}: orders pushed to it wait. Check the gateway's network and relay settings.",
                        gateway.gateway_name,
                        wall_clock(since, now)
                    ),
                ));
            }
        }
        if let (true, Some(first)) = (gateway.serves_worklist, gateway.first_slot_today) {
            let today = crate::london::today(now);
            let queried_today = gateway
                .worklist_queried_at
                .is_some_and(|at| crate::london::today(at) == today);
            if !queried_today && now - first > thresholds.worklist_grace {
                holding.push(condition(
                    AlertRule::WorklistNotQueried,
                    first,
                    format!(
                        "No modality has asked the {}'s worklist for today's participants, and the first appointment was at {}. Check the modality's worklist settings.",
                        gateway.gateway_name,
                        wall_clock(first, now)
                    ),
                ));
            }
        }
        if gateway.unresolved_failures >= thresholds.failed_messages.max(1) {
            let since = gateway.earliest_failure_at.unwrap_or(now);
            let count = gateway.unresolved_failures;
            holding.push(condition(
                AlertRule::MessagesFailed,
                since,
                format!(
                    "{count} {} to the {} failed (the first at {}). Check the messages and resend.",
                    if count == 1 { "message" } else { "messages" },
                    gateway.gateway_name,
                    wall_clock(since, now)
                ),
            ));
        }
    }
    holding
}

/// What to change so that exactly the holding conditions have an open alert: open the new ones,
/// resolve the open ones that no longer hold, leave the rest (an alert opens once).
pub fn reconcile(open: &[OpenAlert], holding: &[AlertCondition]) -> Vec<AlertChange> {
    let mut changes: Vec<AlertChange> = holding
        .iter()
        .filter(|condition| {
            !open.iter().any(|alert| {
                alert.rule == condition.rule && alert.gateway_id == condition.gateway_id
            })
        })
        .cloned()
        .map(AlertChange::Open)
        .collect();
    changes.extend(
        open.iter()
            .filter(|alert| {
                !holding.iter().any(|condition| {
                    condition.rule == alert.rule && condition.gateway_id == alert.gateway_id
                })
            })
            .cloned()
            .map(AlertChange::Resolve),
    );
    changes
}

/// "09:12" on the same UK day as `now`, "09:12 on 1 December" on another.
fn wall_clock(at: DateTime<Utc>, now: DateTime<Utc>) -> String {
    let local = london::local(at);
    if local.date() == london::today(now) {
        local.format("%H:%M").to_string()
    } else {
        local.format("%H:%M on %-d %B").to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use uuid::Uuid;

    fn at(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text)
            .unwrap()
            .with_timezone(&Utc)
    }

    fn leeds() -> GatewayObservation {
        GatewayObservation {
            gateway_id: GatewayId::from_uuid(Uuid::from_u128(1)),
            gateway_name: "Leeds gateway".into(),
            setting_id: SettingId::from_uuid(Uuid::from_u128(2)),
            created_at: at("2026-07-01T07:00:00Z"),
            last_seen_at: Some(at("2026-07-01T08:10:00Z")),
            oldest_pending_at: None,
            unresolved_failures: 0,
            earliest_failure_at: None,
            echo: crate::echo::EchoRecord::default(),
            pushes_by_relay: false,
            relay_listener: None,
            serves_worklist: false,
            worklist_queried_at: None,
            first_slot_today: None,
        }
    }

    fn rules(holding: &[AlertCondition]) -> Vec<AlertRule> {
        holding.iter().map(|condition| condition.rule).collect()
    }

    #[test]
    fn a_gateway_heard_from_recently_with_nothing_waiting_raises_nothing() {
        let now = at("2026-07-01T08:15:00Z");
        assert!(conditions(&[leeds()], &AlertThresholds::default(), now).is_empty());
    }

    #[test]
    fn a_gateway_silent_past_the_threshold_is_reported_in_uk_time() {
        let now = at("2026-07-01T08:20:01Z");
        let holding = conditions(&[leeds()], &AlertThresholds::default(), now);
        assert_eq!(rules(&holding), [AlertRule::GatewaySilent]);
        // 08:10 UTC is 09:10 BST.
        assert_eq!(
            holding[0].summary,
            "The Leeds gateway has not been heard from since 09:10. Check that it is running."
        );
        assert_eq!(holding[0].since, at("2026-07-01T08:10:00Z"));
        // Exactly at the threshold it is not yet silent.
        let at_threshold = at("2026-07-01T08:20:00Z");
        assert!(conditions(&[leeds()], &AlertThresholds::default(), at_threshold).is_empty());
    }

    #[test]
    fn a_gateway_never_heard_from_is_silent_from_when_it_was_set_up() {
        let never = GatewayObservation {
            last_seen_at: None,
            ..leeds()
        };
        let holding = conditions(
            &[never],
            &AlertThresholds::default(),
            at("2026-07-01T07:11:00Z"),
        );
        assert_eq!(rules(&holding), [AlertRule::GatewaySilent]);
        assert!(holding[0].summary.contains("since it was set up"));
    }

    #[test]
    fn a_message_waiting_past_the_threshold_says_to_use_the_manual_process() {
        let waiting = GatewayObservation {
            oldest_pending_at: Some(at("2026-01-15T09:12:00Z")),
            last_seen_at: Some(at("2026-01-15T09:16:00Z")),
            ..leeds()
        };
        let thresholds = AlertThresholds::default();
        assert!(conditions(
            std::slice::from_ref(&waiting),
            &thresholds,
            at("2026-01-15T09:16:59Z")
        )
        .is_empty());
        let holding = conditions(&[waiting], &thresholds, at("2026-01-15T09:17:01Z"));
        assert_eq!(rules(&holding), [AlertRule::MessagesWaiting]);
        // GMT in January: the wall clock is UTC.
        assert_eq!(
            holding[0].summary,
            "Messages to the Leeds gateway are not being delivered since 09:12. Use the manual process."
        );
    }

    #[test]
    fn a_time_on_another_day_names_the_day() {
        let waiting = GatewayObservation {
            oldest_pending_at: Some(at("2026-11-30T16:45:00Z")),
            last_seen_at: Some(at("2026-12-01T09:00:00Z")),
            ..leeds()
        };
        let holding = conditions(
            &[waiting],
            &AlertThresholds::default(),
            at("2026-12-01T09:01:00Z"),
        );
        assert!(
            holding[0].summary.contains("since 16:45 on 30 November"),
            "{}",
            holding[0].summary
        );
    }

    #[test]
    fn unresolved_failures_raise_an_alert_from_the_configured_count() {
        let failing = GatewayObservation {
            unresolved_failures: 2,
            earliest_failure_at: Some(at("2026-07-01T08:12:00Z")),
            ..leeds()
        };
        let now = at("2026-07-01T08:13:00Z");
        let holding = conditions(
            std::slice::from_ref(&failing),
            &AlertThresholds::default(),
            now,
        );
        assert_eq!(rules(&holding), [AlertRule::MessagesFailed]);
        assert_eq!(
            holding[0].summary,
            "2 messages to the Leeds gateway failed (the first at 09:12). Check the messages and resend."
        );
        let three = AlertThresholds {
            failed_messages: 3,
            ..AlertThresholds::default()
        };
        assert!(conditions(&[failing], &three, now).is_empty());
    }

    #[test]
    fn a_condition_opens_once_and_resolves_once() {
        let gateway = leeds();
        let thresholds = AlertThresholds::default();
        let silent = conditions(
            std::slice::from_ref(&gateway),
            &thresholds,
            at("2026-07-01T09:00:00Z"),
        );
        // Nothing open: open it.
        let changes = reconcile(&[], &silent);
        assert_eq!(changes, vec![AlertChange::Open(silent[0].clone())]);
        // Open and still true: nothing to do.
        let open = OpenAlert {
            id: 7,
            rule: AlertRule::GatewaySilent,
            gateway_id: gateway.gateway_id,
        };
        assert!(reconcile(std::slice::from_ref(&open), &silent).is_empty());
        // Open and no longer true: resolve it.
        assert_eq!(
            reconcile(std::slice::from_ref(&open), &[]),
            vec![AlertChange::Resolve(open)]
        );
    }

    #[test]
    fn alerts_are_kept_apart_by_rule_and_gateway() {
        let other = GatewayObservation {
            gateway_id: GatewayId::from_uuid(Uuid::from_u128(9)),
            gateway_name: "Bradford gateway".into(),
            ..leeds()
        };
        let holding = conditions(
            &[leeds(), other.clone()],
            &AlertThresholds::default(),
            at("2026-07-01T09:00:00Z"),
        );
        let open = [OpenAlert {
            id: 1,
            rule: AlertRule::GatewaySilent,
            gateway_id: leeds().gateway_id,
        }];
        let changes = reconcile(&open, &holding);
        assert_eq!(changes.len(), 1);
        assert!(matches!(&changes[0], AlertChange::Open(c) if c.gateway_id == other.gateway_id));
    }

    #[test]
    fn every_rule_code_reads_back() {
        for rule in AlertRule::ALL {
            assert_eq!(AlertRule::parse(rule.code()), Some(rule));
        }
        assert_eq!(AlertRule::parse("bogus"), None);
    }

    #[test]
    fn a_gateway_whose_echoes_stop_coming_back_is_unproven_until_one_does() {
        let now = at("2026-07-01T09:30:00Z");
        let proven_at = at("2026-07-01T09:12:00Z");
        let good = crate::echo::EchoRecord {
            proven_at: Some(proven_at),
            answered_at: Some(proven_at),
            round_trip_ms: Some(4),
            ..Default::default()
        };
        let thresholds = AlertThresholds::default();
        // This rule's conditions only (Leeds is also silent in these observations).
        let unproven = |observation: GatewayObservation, now| {
            conditions(&[observation], &thresholds, now)
                .into_iter()
                .filter(|c| c.rule == AlertRule::GatewayUnproven)
                .collect::<Vec<_>>()
        };
        // Last echo good, none in flight: fine, however long ago (echoes may be off).
        let quiet = GatewayObservation {
            echo: good.clone(),
            ..leeds()
        };
        assert!(unproven(quiet, now).is_empty());
        // An echo unanswered, the last good one 18 minutes ago.
        let unanswered = GatewayObservation {
            echo: crate::echo::EchoRecord {
                requested_at: Some(at("2026-07-01T09:28:00Z")),
                ..good.clone()
            },
            ..leeds()
        };
        let holding = unproven(unanswered, now);
        assert_eq!(holding.len(), 1);
        assert_eq!(holding[0].since, proven_at);
        assert!(
            holding[0].summary.starts_with(
                "Orders cannot be shown to reach the Leeds gateway since 10:12 (await reply"
            ),
            "{}",
            holding[0].summary
        );
        // Within the threshold: not yet.
        let recent = GatewayObservation {
            echo: crate::echo::EchoRecord {
                requested_at: Some(at("2026-07-01T09:29:00Z")),
                ..good
            },
            ..leeds()
        };
        assert!(unproven(recent, at("2026-07-01T09:20:00Z")).is_empty());
    }

    /// The conditions of `rule` only.
    fn only(rule: AlertRule, holding: Vec<AlertCondition>) -> Vec<AlertCondition> {
        holding.into_iter().filter(|c| c.rule == rule).collect()
    }

    #[test]
    fn a_relay_gateway_whose_listener_is_reported_down_past_the_threshold_has_an_alert() {
        let down_since = at("2026-07-01T09:12:00Z");
        let down = GatewayObservation {
            pushes_by_relay: true,
            relay_listener: Some((false, down_since)),
            ..leeds()
        };
        let thresholds = AlertThresholds::default();
        let rule = AlertRule::RelayListenerAbsent;
        assert!(only(
            rule,
            conditions(
                std::slice::from_ref(&down),
                &thresholds,
                at("2026-07-01T09:13:00Z")
            )
        )
        .is_empty());
        let holding = only(
            rule,
            conditions(
                std::slice::from_ref(&down),
                &thresholds,
                at("2026-07-01T09:15:00Z"),
            ),
        );
        assert_eq!(holding.len(), 1);
        assert_eq!(holding[0].since, down_since);
        assert_eq!(
            holding[0].summary,
            "The Leeds gateway's relay listener has been disconnected since 10:12: orders pushed to it wait. Check the gateway's network and relay settings."
        );
        // Connected again, or a polling gateway: nothing.
        let up = GatewayObservation {
            relay_listener: Some((true, at("2026-07-01T09:14:00Z"))),
            ..down.clone()
        };
        let polling = GatewayObservation {
            pushes_by_relay: false,
            ..down
        };
        let later = at("2026-07-01T09:30:00Z");
        assert!(only(rule, conditions(&[up, polling], &thresholds, later)).is_empty());
    }

    #[test]
    fn a_worklist_nobody_has_queried_by_the_first_slot_has_an_alert_until_a_modality_asks() {
        let first = at("2026-07-01T08:00:00Z");
        let unqueried = GatewayObservation {
            serves_worklist: true,
            first_slot_today: Some(first),
            // Yesterday's query does not count.
            worklist_queried_at: Some(at("2026-06-30T16:00:00Z")),
            ..leeds()
        };
        let thresholds = AlertThresholds::default();
        let rule = AlertRule::WorklistNotQueried;
        assert!(only(
            rule,
            conditions(
                std::slice::from_ref(&unqueried),
                &thresholds,
                at("2026-07-01T07:59:00Z")
            )
        )
        .is_empty());
        let holding = only(
            rule,
            conditions(
                std::slice::from_ref(&unqueried),
                &thresholds,
                at("2026-07-01T08:01:00Z"),
            ),
        );
        assert_eq!(holding.len(), 1);
        assert_eq!(
            holding[0].summary,
            "No modality has asked the Leeds gateway's worklist for today's participants, and the first appointment was at 09:00. Check the modality's worklist settings."
        );
        let queried = GatewayObservation {
            worklist_queried_at: Some(at("2026-07-01T08:05:00Z")),
            ..unqueried.clone()
        };
        let no_clinic = GatewayObservation {
            first_slot_today: None,
            ..unqueried
        };
        let later = at("2026-07-01T08:10:00Z");
        assert!(only(rule, conditions(&[queried, no_clinic], &thresholds, later)).is_empty());
    }
}
