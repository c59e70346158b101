urlpatterns: list = []
callback_urlpatterns: list = []
