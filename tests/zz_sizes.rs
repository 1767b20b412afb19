use m365_posture::snapshot::*;
#[test]
fn sizes() {
    println!("Unavailable {}", std::mem::size_of::<Unavailable>());
    println!(
        "Result<Vec<AuthMethod>,Unavailable> {}",
        std::mem::size_of::<Result<Vec<AuthMethod>, Unavailable>>()
    );
    println!("User {}", std::mem::size_of::<User>());
    println!(
        "UserRegistrationDetails {}",
        std::mem::size_of::<UserRegistrationDetails>()
    );
    println!("AuthMethod {}", std::mem::size_of::<AuthMethod>());
    println!(
        "CalendarPermission {}",
        std::mem::size_of::<CalendarPermission>()
    );
    println!("MessageRule {}", std::mem::size_of::<MessageRule>());
    println!(
        "Finding {}",
        std::mem::size_of::<m365_posture::findings::Finding>()
    );
    println!(
        "Opt DateTime {}",
        std::mem::size_of::<Option<chrono::DateTime<chrono::Utc>>>()
    );
}
