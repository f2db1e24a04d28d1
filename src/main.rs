fn main() {
    println!("codedeploy-agent {}", codedeploy_agent::VERSION);
}
