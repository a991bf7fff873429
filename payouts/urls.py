from __future__ import annotations

from django.urls import path

from payouts import api

urlpatterns = [
    path("shops/<int:pk>/balance/", api.ShopBalanceView.as_view(), name="shop-balance"),
    path("shops/<int:pk>/statement/", api.ShopStatementView.as_view(), name="shop-statement"),
    path("shops/<int:pk>/payout-account/", api.ShopPayoutAccountView.as_view(), name="shop-payout-account"),
    path("hosts/<int:pk>/balance/", api.HostBalanceView.as_view(), name="host-balance"),
    path("hosts/<int:pk>/statement/", api.HostStatementView.as_view(), name="host-statement"),
    path("hosts/<int:pk>/payout-account/", api.HostPayoutAccountView.as_view(), name="host-payout-account"),
    path("payouts/", api.PayoutListView.as_view(), name="payout-list"),
    path("payouts/<int:pk>/approve/", api.PayoutApproveView.as_view(), name="payout-approve"),
    path("wallet/cash-outs/", api.CashOutListCreateView.as_view(), name="cash-out-list"),
]
