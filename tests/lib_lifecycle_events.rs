//! The emulator stands in for the service, so it keeps its own event lists (the service, not
//! the agent, decides what a host receives). They must name the agent's one list of events,
//! `lifecycle::Event`, in the same order and spelling.

use codedeploy_agent::lifecycle::{is_pascal_case, Event, CANONICAL_EVENTS};
use codedeploy_emulator::model::Role;
use codedeploy_emulator::schedule::{lifecycle_events, ALL_LIFECYCLE_EVENTS};

#[test]
fn the_emulator_names_the_agents_events_in_order() {
    assert_eq!(ALL_LIFECYCLE_EVENTS, CANONICAL_EVENTS);
    let in_place: Vec<Event> = lifecycle_events(Role::InPlace, true)
        .into_iter()
        .map(|name| Event::from_name(name).unwrap_or_else(|| panic!("unknown event {name}")))
        .collect();
    assert_eq!(in_place, Event::ALL);
    for role in [
        Role::InPlace,
        Role::Replacement,
        Role::Original,
        Role::RollbackReplacement,
        Role::RollbackOriginal,
    ] {
        for lb in [false, true] {
            for name in lifecycle_events(role, lb) {
                assert!(
                    Event::from_name(name).is_some() && is_pascal_case(name),
                    "{name}"
                );
            }
        }
    }
}
