"""The portal: server-rendered pages for researchers, the panel and data controllers, output
checkers, clerical reviewers and operators, as a client of the services' HTTP APIs."""
