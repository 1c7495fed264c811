"""Demo customers (`make run`): real-looking accounts with contacts for the demo deals, written
through the API like any client would (CreateCustomer dedupes, so a second run matches them), and
each demo deal pointed at its account (UpdateDeal on `customer`, only when not yet linked).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from google.protobuf import field_mask_pb2

from kit.seeding import SeedUser
from salesops.pipeline.v1 import customer_pb2, deal_pb2, pipeline_service_pb2_grpc
from salesops.pipeline.v1 import pipeline_service_pb2 as pb

# (company, city, contact, title): two accounts per demo rep, each holding two of their deals.
COMPANIES: tuple[tuple[str, str, str, str], ...] = (
    ("Ningbo Valve Works Co., Ltd.", "Ningbo", "Li Na", "Procurement Manager"),
    ("Suzhou Precision Castings Co., Ltd.", "Suzhou", "Zhou Qiang", "Plant Director"),
    ("Hangzhou Green Packaging Co., Ltd.", "Hangzhou", "Wang Fang", "COO"),
    ("Shanghai Lianhua Logistics Co., Ltd.", "Shanghai", "Chen Hao", "IT Director"),
    ("Wuxi Sunrise Textiles Co., Ltd.", "Wuxi", "Zhao Min", "General Manager"),
    ("Changzhou Apex Motors Co., Ltd.", "Changzhou", "Sun Lei", "Purchasing Lead"),
    ("Jiaxing Harbor Foods Co., Ltd.", "Jiaxing", "Huang Li", "Finance Director"),
    ("Nanjing Bright Medical Devices Co., Ltd.", "Nanjing", "Xu Tao", "CTO"),
    ("Hefei Northstar Electronics Co., Ltd.", "Hefei", "Ma Jun", "Operations Manager"),
    ("Shaoxing Silkroad Apparel Co., Ltd.", "Shaoxing", "Guo Yan", "Owner"),
    ("Yangzhou Riverbend Chemicals Co., Ltd.", "Yangzhou", "He Bin", "Safety Manager"),
    ("Taizhou Coastal Shipbuilding Co., Ltd.", "Taizhou", "Lin Xue", "Project Director"),
    ("Wenzhou Keystone Footwear Co., Ltd.", "Wenzhou", "Zheng Kai", "Supply Chain Head"),
    ("Nantong Evergreen Pharma Co., Ltd.", "Nantong", "Luo Ying", "QA Director"),
    ("Jinhua Summit Tools Co., Ltd.", "Jinhua", "Liang Wei", "Sales Director"),
    ("Huzhou Lakeside Furniture Co., Ltd.", "Huzhou", "Song Jia", "CEO"),
)


def customer_for(rep_index: int, deal_index: int) -> customer_pb2.Customer:
    name, city, contact, title = COMPANIES[(2 * rep_index + deal_index // 2) % len(COMPANIES)]
    n = (2 * rep_index + deal_index // 2) % len(COMPANIES)
    return customer_pb2.Customer(
        display_name=name,
        industry="manufacturing",
        city=city,
        contacts=[
            customer_pb2.CustomerContact(
                name=contact,
                job_title=title,
                phone=f"+86 139 0021 {1000 + n:04d}",
                email=f"{contact.lower().replace(' ', '.')}@example.cn",
            )
        ],
    )


async def seed_customers(
    stub: pipeline_service_pb2_grpc.PipelineServiceAsyncStub,
    md: Callable[[str], tuple[tuple[str, str], ...]],
    users: Sequence[SeedUser],
    deal_ids: Callable[[SeedUser], Sequence[str]],
) -> None:
    """Each rep's accounts (created or matched), and their demo deals linked to them."""
    reps = [u for u in users if "rep" in u.roles]
    for i, rep in enumerate(reps):
        for n, deal_id in enumerate(deal_ids(rep)):
            made = await stub.CreateCustomer(
                pb.CreateCustomerRequest(customer=customer_for(i, n)), metadata=md(rep.user_id), timeout=10
            )
            customer = made.customer
            deal = (
                await stub.GetDeal(pb.GetDealRequest(deal_id=deal_id), metadata=md(rep.user_id), timeout=10)
            ).deal
            if deal.customer.customer_id == customer.customer_id:
                continue  # linked on an earlier run
            link = deal_pb2.Deal(
                deal_id=deal_id,
                etag=deal.etag,
                customer=deal_pb2.DealCustomer(
                    customer_id=customer.customer_id,
                    display_name=customer.display_name,
                    industry=customer.industry,
                    city=customer.city,
                ),
            )
            mask = field_mask_pb2.FieldMask(paths=["customer"])
            await stub.UpdateDeal(
                pb.UpdateDealRequest(deal=link, update_mask=mask), metadata=md(rep.user_id), timeout=10
            )
