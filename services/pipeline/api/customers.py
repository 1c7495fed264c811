"""Customers: standard methods (dedupe on create) and the single customer view."""

from __future__ import annotations

from kit.auth import Principal
from kit.errors import InvalidArgument
from kit.grpc import context as call
from kit.resources import PageRequest, Sort, UnitOfWork, query_key
from salesops.pipeline.v1 import customer_pb2
from salesops.pipeline.v1 import pipeline_service_pb2 as pb
from services.pipeline import customer_view, customers
from services.pipeline.api.base import ApiBase, Ctx
from services.pipeline.convert import bounded_lists, from_ts, now
from services.pipeline.domain import customers as rules
from services.pipeline.presenters import CUSTOMERS, CustomerItem
from services.pipeline.repositories.customers import ORDERS, CustomerActivity, Customers, CustomerSearch
from services.pipeline.store_customers import CustomerRow

DEFAULT_ORDER = "update_time desc"


def customer_search(who: Principal, f: pb.CustomerFilter) -> CustomerSearch:
    bounded_lists(f, "filter")
    key = ""
    if f.contact_key.strip():
        text = f.contact_key.strip()
        email = rules.normalize_email(text) if "@" in text else None
        phone = None if "@" in text else rules.normalize_phone(text)
        if not (email or phone):
            raise InvalidArgument.field("filter.contact_key", "a phone number or an e-mail address")
        key = rules.contact_keys(phone or "", email or "")[0]
    return CustomerSearch(
        owners=[who.user_id if o == "me" else o for o in f.owner_user_ids],
        org_path=f.org_path,
        industry=f.industry,
        city=f.city,
        query=f.query.strip(),
        contact_key=key,
        updated_after=from_ts(f.update_time_after, "filter.update_time_after"),
    )


def customer_order(order_by: str) -> Sort:
    key, _, direction = (order_by or DEFAULT_ORDER).strip().partition(" ")
    if key not in ORDERS or direction.strip() not in ("", "desc", "asc"):
        raise InvalidArgument.field("order_by", f"one of {', '.join(ORDERS)}, optionally followed by ' desc'")
    return Sort(ORDERS[key], descending=direction.strip() == "desc")


class CustomersApi(ApiBase):
    async def _customer(self, uow: UnitOfWork, who: Principal, row: CustomerRow) -> customer_pb2.Customer:
        lead_ids = await CustomerActivity(uow).lead_ids(row.customer_id)
        return CUSTOMERS.present(who, CustomerItem(row, tuple(lead_ids)))

    async def CreateCustomer(
        self, request: pb.CreateCustomerRequest, context: Ctx
    ) -> pb.CreateCustomerResponse:
        who = call.principal()

        async def work(uow: UnitOfWork) -> pb.CreateCustomerResponse:
            row, matched = await customers.create_customer(uow, who, request.customer, now())
            return pb.CreateCustomerResponse(
                customer=await self._customer(uow, who, row), matched_existing=matched
            )

        return await self.write(who, work)

    async def GetCustomer(self, request: pb.GetCustomerRequest, context: Ctx) -> pb.GetCustomerResponse:
        who = call.principal()
        async with self.read(who) as uow:
            row = await Customers(uow).visible(who, request.customer_id)
            return pb.GetCustomerResponse(customer=await self._customer(uow, who, row))

    async def ListCustomers(self, request: pb.ListCustomersRequest, context: Ctx) -> pb.ListCustomersResponse:
        who = call.principal()
        page = PageRequest.parse(request.page_size, request.page_token)
        search = customer_search(who, request.filter)
        order = customer_order(request.order_by)
        query = query_key(
            "ListCustomers", who.user_id, request.filter, (request.order_by or DEFAULT_ORDER).strip()
        )
        async with self.read(who) as uow:
            found = await Customers(uow).search(who, search, order, page, query)
            items = [await self._customer(uow, who, r) for r in found.items]
        return pb.ListCustomersResponse(
            customers=items, next_page_token=found.next_page_token, total_size=found.total_size or 0
        )

    async def UpdateCustomer(
        self, request: pb.UpdateCustomerRequest, context: Ctx
    ) -> pb.UpdateCustomerResponse:
        who = call.principal()

        async def work(uow: UnitOfWork) -> customer_pb2.Customer:
            row = await customers.update_customer(uow, who, request.customer, request.update_mask, now())
            return await self._customer(uow, who, row)

        return pb.UpdateCustomerResponse(customer=await self.write(who, work))

    async def GetCustomerView(
        self, request: pb.GetCustomerViewRequest, context: Ctx
    ) -> pb.GetCustomerViewResponse:
        who = call.principal()
        async with self.read(who) as uow:
            return pb.GetCustomerViewResponse(
                view=await customer_view.customer_view(uow, who, request.customer_id, now())
            )
