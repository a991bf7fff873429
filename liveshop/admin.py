from __future__ import annotations

from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin

from liveshop.models import User


@admin.register(User)
class UserAdmin(DjangoUserAdmin):
    list_display = ("username", "display_name", "district", "is_staff", "is_active", "date_joined")
    list_filter = ("is_staff", "is_superuser", "is_active", "district")
    search_fields = ("username", "display_name", "email", "district")
    fieldsets = (
        *(DjangoUserAdmin.fieldsets or ()),
        ("liveshop", {"fields": ("display_name", "district")}),
    )
