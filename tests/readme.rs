//! The README shows the state machine as the code defines it.

#[test]
fn the_readme_shows_the_state_machine_table_from_the_code() {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let table = screening::core::appointment::transitions_markdown();
    assert!(
        readme.contains(&table),
        "README.md's state machine table is out of date; it should contain:\n{table}"
    );
}
