"""What a run leaves behind: the records model, the store interface, the DynamoDB store."""
