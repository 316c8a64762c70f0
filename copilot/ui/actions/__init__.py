"""The app's actions, by concern. Each module is a mixin of CopilotApp (app.py) and works through its parts:
`self.ui` (UIState), `self.state` (the projection), `self.session` (the driver's session), `self.mark_dirty`,
`self.flush`, `self.start(async_fn, name)` (a worker, given the function, whose errors reach the one error handler)."""
