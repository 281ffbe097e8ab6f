"""Every patch of moto the local mode makes: what correctness needs, and what only speeds it up."""
