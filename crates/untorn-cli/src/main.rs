fn main() {
    println!("untorn: under construction");
}
