"""Deposits through the NOWPayments-compatible provider; IPN callbacks credit the wallet."""
