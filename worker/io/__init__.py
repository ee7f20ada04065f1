"""Getting articles in and out: reading article files and archives, the seeder that replays them onto
the input topic, and the consumer that reads the output topics."""
