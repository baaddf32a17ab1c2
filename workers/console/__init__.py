"""What an operator does, the same from the terminal (``workers.cli``) and the web page
(``workers.web``): read the fleet's status; choose, preview, replay and discard dead
letters.  The fronts only show what these return."""
