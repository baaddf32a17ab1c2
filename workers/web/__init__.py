"""The operator's web page (``provisioner ops serve``): dead letters grouped by cause,
one letter in detail, replay with a dry-run preview and a rate limit, discard with
confirmation, and the fleet's status.  Every view and action calls :mod:`workers.console`,
as the CLI does; the page adds only HTTP Basic authentication and CSRF protection."""
