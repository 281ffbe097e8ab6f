"""What a run is: the spec model, its validation, templates, the matrix, the plan, items_from."""
