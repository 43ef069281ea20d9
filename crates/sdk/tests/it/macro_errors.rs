//! The common mistakes with the SDK's macros fail to compile with an error that points at the
//! user's code (the expected messages are in tests/ui/*.stderr).

#[test]
fn common_mistakes_are_reported_at_the_users_code() {
    let cases = trybuild::TestCases::new();
    cases.compile_fail("tests/ui/*.rs");
}
